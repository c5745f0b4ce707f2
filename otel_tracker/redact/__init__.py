"""Secrets never reach a file or a mirror: text (``text``), command lines
(``flags``), params walked field by field (``objects``), which names are secret
(``names``) and the values already seen as secrets (``known``)."""
