from django.urls import path

from worklist import scu_views, views

urlpatterns = [
    path("calendar/", views.calendar, name="calendar"),
    path("calendar/body/", views.calendar_body, name="calendar_body"),
    path("calendar/appointments/new/", views.appointment_new, name="appointment_new"),
    path("calendar/appointments/<int:pk>/", views.appointment_detail, name="appointment_detail"),
    path("calendar/appointments/<int:pk>/move/", views.appointment_move, name="appointment_move"),
    path(
        "calendar/appointments/<int:pk>/cancel/",
        views.appointment_cancel,
        name="appointment_cancel",
    ),
    path("worklist/import/", scu_views.import_worklist, name="worklist_import"),
]
