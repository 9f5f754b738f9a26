from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from dicomnet import ops_views
from dicomnet import urls as dicomnet_urls
from nexrel import ops as nexrel_ops
from nexrel import viewer as nexrel_viewer
from nexrel import views as nexrel_views
from patients import audit_views as patients_audit_views
from patients import views as patients_views

urlpatterns = [
    path("", nexrel_views.home, name="home"),
    path("metrics", nexrel_ops.metrics, name="metrics"),
    path("health/", nexrel_ops.health, name="health"),
    path("ops/", ops_views.dashboard, name="ops_dashboard"),
    path("ops/failures/<int:pk>/retry/", ops_views.retry_failure, name="ops_retry"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("patients/", nexrel_views.patient_list, name="patient_list"),
    path("patients/<int:pk>/", nexrel_views.patient_detail, name="patient_detail"),
    path("review/", include("dicomnet.ingest.review_urls")),
    path("notifications/bell/", patients_views.notification_bell, name="notification_bell"),
    path("notifications/read/", patients_views.notifications_read, name="notifications_read"),
    path("preferences/", patients_views.preferences, name="preferences"),
    path("audit/", patients_audit_views.audit_trail, name="audit_trail"),
    path(
        "audit/communications/",
        patients_audit_views.communications_register,
        name="communications_register",
    ),
    path(
        "notifications/<int:pk>/read/",
        patients_views.notification_read,
        name="notification_read",
    ),
    path("api/dental/dicom/", include(dicomnet_urls.api_urlpatterns)),
    path("api/dental/studies/", include(dicomnet_urls.studies_api_urlpatterns)),
    path("api/dental/", include(dicomnet_urls.dental_api_urlpatterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("dicom/", include("dicomnet.urls")),
    path("dicomweb/", include(dicomnet_urls.dicomweb_urlpatterns)),
    path("viewer/studies/<str:study_uid>/", nexrel_viewer.study_viewer, name="viewer"),
    path("viewer/compare/", nexrel_viewer.compare_viewer, name="viewer_compare"),
    path("viewer/api/", include("dicomnet.viewer.urls")),
    path("", include("worklist.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
