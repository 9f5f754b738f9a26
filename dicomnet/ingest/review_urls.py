from django.urls import path

from dicomnet.ingest import review_views

urlpatterns = [
    path("", review_views.queue, name="review_queue"),
    path("assign/", review_views.assign, name="review_assign"),
    path("create-patient/", review_views.create_patient, name="review_create_patient"),
    path("undo/<uuid:batch>/", review_views.undo, name="review_undo"),
    path("patients/", review_views.patient_search, name="review_patient_search"),
]
