"""The screens of `fannode top`, each with its styles in a .tcss file beside it."""
