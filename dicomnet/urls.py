"""dicomnet's pages (``urlpatterns``, mounted at /dicom/), its REST API (``api_urlpatterns``,
mounted at /api/dental/dicom/; ``studies_api_urlpatterns`` and ``dental_api_urlpatterns``
at /api/dental/studies/ and /api/dental/) and DICOMweb (``dicomweb_urlpatterns``, mounted
at /dicomweb/; the only import of ``dicomnet.dicomweb``)."""

from django.urls import path

from dicomnet import export_views, study_views
from dicomnet.api import images, receive, records, review_actions, review_queue, study_detail
from dicomnet.api import views as api_views
from dicomnet.dental import views as dental_views
from dicomnet.dicomweb import views as dicomweb_views
from dicomnet.ingest import views as ingest_views
from dicomnet.qr import refusals as qr_refusals
from dicomnet.qr import views as qr_views

urlpatterns = [
    path("upload/", ingest_views.upload, name="dicom_upload"),
    path("patients/<int:pk>/record.zip", export_views.record_export, name="record_export"),
    path("studies/<int:pk>/", study_views.study_page, name="study_page"),
    path("studies/<int:pk>/study.zip", study_views.study_zip, name="study_zip"),
    path(
        "studies/<int:pk>/instances/<str:instance>/original.dcm",
        study_views.study_instance_dicom,
        name="study_instance_dicom",
    ),
    path("mounts/<int:pk>/", dental_views.mount_page, name="mount_page"),
    path("mounts/<int:pk>/change/", dental_views.mount_change, name="mount_change"),
    path("mounts/<int:pk>/mount.pdf", dental_views.mount_pdf_view, name="mount_pdf"),
    path("instances/<int:pk>/<str:kind>.webp", ingest_views.instance_image, name="instance_image"),
    path("find/<int:pk>/", qr_views.find_prior, name="qr_find"),
    path("find/<int:pk>/import/", qr_views.import_studies, name="qr_import"),
    path("jobs/<int:pk>/", qr_views.job_page, name="qr_job"),
    path("jobs/<int:pk>/progress/", qr_views.job_partial, name="qr_job_progress"),
    path("jobs/<int:pk>/cancel/", qr_views.job_cancel, name="qr_job_cancel"),
    path("servers/", qr_views.server_list, name="dicom_servers"),
    path("servers/add/", qr_views.server_edit, name="dicom_server_add"),
    path("servers/refused/", qr_refusals.refused_associations, name="dicom_refused"),
    path("servers/<int:pk>/", qr_views.server_edit, name="dicom_server_edit"),
    path("servers/<int:pk>/test/", qr_views.server_test, name="dicom_server_test"),
]

api_urlpatterns = [
    path("receive", receive.ReceiveView.as_view(), name="api_dicom_receive"),
    path("query", api_views.QueryView.as_view(), name="api_dicom_query"),
    path("import", api_views.ImportView.as_view(), name="api_dicom_import"),
    path("jobs/<int:pk>", api_views.JobView.as_view(), name="api_dicom_job"),
    path("jobs/<int:pk>/cancel", api_views.JobCancelView.as_view(), name="api_dicom_job_cancel"),
]

# Mounted at /api/dental/studies/.
studies_api_urlpatterns = [
    path("", images.StudyList.as_view(), name="api_dental_studies"),
    path("<int:pk>/", study_detail.StudyDetailView.as_view(), name="api_dental_study"),
]

# Mounted at /api/dental/: the practice's records, images, review decisions and notices.
dental_api_urlpatterns = [
    path("patients/", records.PatientList.as_view(), name="api_dental_patients"),
    path("patients/<int:pk>/", records.PatientDetail.as_view(), name="api_dental_patient"),
    path("appointments/", records.AppointmentList.as_view(), name="api_dental_appointments"),
    path("instances/<int:pk>/", images.InstanceDetail.as_view(), name="api_dental_instance"),
    path(
        "instances/<int:pk>/preview",
        images.InstancePreview.as_view(),
        name="api_dental_instance_preview",
    ),
    path("instances/<int:pk>/file", images.InstanceFile.as_view(), name="api_dental_instance_file"),
    path("review/", review_queue.ReviewQueueList.as_view(), name="api_dental_review"),
    path("review/assign", review_actions.AssignView.as_view(), name="api_dental_review_assign"),
    path(
        "review/create-patient",
        review_actions.CreatePatientView.as_view(),
        name="api_dental_review_create_patient",
    ),
    path(
        "review/batches/<uuid:batch>/undo",
        review_actions.UndoView.as_view(),
        name="api_dental_review_undo",
    ),
    path("notifications/", records.NotificationList.as_view(), name="api_dental_notifications"),
    path(
        "notifications/read",
        records.NotificationsRead.as_view(),
        name="api_dental_notifications_read",
    ),
    path(
        "notifications/<int:pk>/read",
        records.NotificationRead.as_view(),
        name="api_dental_notification_read",
    ),
]

# QIDO-RS (PS3.18 §10.6) and WADO-RS (§10.4): GET, no trailing slash, as DICOMweb clients
# build the paths; STOW-RS (§10.5): POST on "studies" and "studies/{study}".
dicomweb_urlpatterns = [
    path("studies", dicomweb_views.studies, {"resource": "studies"}, name="dicomweb_studies"),
    path("series", dicomweb_views.search, {"resource": "series"}, name="dicomweb_series"),
    path("instances", dicomweb_views.search, {"resource": "instances"}, name="dicomweb_instances"),
    path(
        "studies/<str:study>/series",
        dicomweb_views.search,
        {"resource": "study_series"},
        name="dicomweb_study_series",
    ),
    path(
        "studies/<str:study>/instances",
        dicomweb_views.search,
        {"resource": "study_instances"},
        name="dicomweb_study_instances",
    ),
    path(
        "studies/<str:study>/series/<str:series>/instances",
        dicomweb_views.search,
        {"resource": "series_instances"},
        name="dicomweb_series_instances",
    ),
    # WADO-RS: the stored objects (multipart/related) and their metadata (DICOM JSON).
    # GET retrieves (WADO-RS); POST stores (STOW-RS, PS3.18 §10.5), as on "studies".
    path("studies/<str:study>", dicomweb_views.study, name="dicomweb_retrieve_study"),
    path(
        "studies/<str:study>/metadata",
        dicomweb_views.metadata,
        name="dicomweb_study_metadata",
    ),
    path(
        "studies/<str:study>/series/<str:series>",
        dicomweb_views.retrieve,
        name="dicomweb_retrieve_series",
    ),
    path(
        "studies/<str:study>/series/<str:series>/metadata",
        dicomweb_views.metadata,
        name="dicomweb_series_metadata",
    ),
    path(
        "studies/<str:study>/series/<str:series>/instances/<str:instance>",
        dicomweb_views.retrieve,
        name="dicomweb_retrieve_instance",
    ),
    path(
        "studies/<str:study>/series/<str:series>/instances/<str:instance>/metadata",
        dicomweb_views.metadata,
        name="dicomweb_instance_metadata",
    ),
    path(
        "studies/<str:study>/series/<str:series>/instances/<str:instance>/frames/<str:frame_list>",
        dicomweb_views.frames,
        name="dicomweb_frames",
    ),
    path(
        "studies/<str:study>/series/<str:series>/instances/<str:instance>/bulkdata/<path:path>",
        dicomweb_views.bulkdata,
        name="dicomweb_bulkdata",
    ),
]

# WADO-RS rendered resources and thumbnails (PS3.18 §10.4.1.1.3, §9.5): consumer images of a
# study, a series, an instance or frames, named dicomweb_<level>_rendered / _thumbnail.
_INSTANCE = "studies/<str:study>/series/<str:series>/instances/<str:instance>"
_RENDERED_RESOURCES = (
    ("study", "studies/<str:study>"),
    ("series", "studies/<str:study>/series/<str:series>"),
    ("instance", _INSTANCE),
    ("frames", f"{_INSTANCE}/frames/<str:frame_list>"),
)
dicomweb_urlpatterns += [
    path(
        f"{prefix}/{kind}",
        dicomweb_views.rendered,
        {"kind": kind},
        name=f"dicomweb_{level}_{kind}",
    )
    for level, prefix in _RENDERED_RESOURCES
    for kind in ("rendered", "thumbnail")
]
