"""Actors: the class users subclass, its link to the dispatcher, and built-in actors."""
