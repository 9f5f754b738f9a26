"""Query/retrieve pages (servers, find prior studies)."""

from django.urls import path

from dicomnet import qr_views

urlpatterns = [
    path("find/<int:pk>/", qr_views.find_prior, name="qr_find"),
    path("find/<int:pk>/import/", qr_views.import_studies, name="qr_import"),
    path("jobs/<int:pk>/", qr_views.job_page, name="qr_job"),
    path("jobs/<int:pk>/progress/", qr_views.job_partial, name="qr_job_progress"),
    path("jobs/<int:pk>/cancel/", qr_views.job_cancel, name="qr_job_cancel"),
    path("servers/", qr_views.server_list, name="dicom_servers"),
    path("servers/add/", qr_views.server_edit, name="dicom_server_add"),
    path("servers/<int:pk>/", qr_views.server_edit, name="dicom_server_edit"),
    path("servers/<int:pk>/test/", qr_views.server_test, name="dicom_server_test"),
]
