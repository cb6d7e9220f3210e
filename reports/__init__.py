"""Rendering of results files: HTML report, Markdown summary, JUnit XML (issues 4 and 5)."""
