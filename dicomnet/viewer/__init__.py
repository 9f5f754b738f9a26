"""What the diagnostic viewer (docs/viewer.md) needs of dicomnet: the images of a study in
viewing order (selectors.py) and the annotations users draw on them (annotations.py, with
its JSON endpoints in views.py, mounted at /viewer/api/ by nexrel.urls)."""
