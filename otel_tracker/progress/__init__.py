"""Live progress and the ETA model (pure model in ``eta``, lines in ``render``, output in ``reporter``)."""
