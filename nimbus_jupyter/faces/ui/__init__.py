"""Views: render deploy progress and results; no logic of their own."""
