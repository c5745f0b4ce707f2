"""Running things as tracked runs: any command (``command``, with its process
group and output in ``child_process`` and ``child_output``), pipeline files
(``pipeline_file``, ``pipeline_runner``), the artifacts a command leaves
(``artifacts``), and an unchanged Python script as one step (``auto``).
"""
