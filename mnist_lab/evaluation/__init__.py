"""What trained runs do: on the test images (evaluation), side by side and against the notebook (comparison,
reference), on single drawings (inference), and what their layers see (explanation)."""
