"""Query/retrieve pages (servers, find prior studies)."""

urlpatterns: list = []
