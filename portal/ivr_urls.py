"""Client portal: the company's call flow (IVR menus, options, opening hours)."""

from django.urls import path

from portal import ivr_views

urlpatterns = [
    path("", ivr_views.ivr_home, name="ivr_home"),
    path("hours/", ivr_views.ivr_hours, name="ivr_hours"),
    path("menus/new/", ivr_views.ivr_menu_create, name="ivr_menu_create"),
    path("menus/<int:menu_id>/", ivr_views.ivr_menu, name="ivr_menu"),
    path("menus/<int:menu_id>/delete/", ivr_views.ivr_menu_delete, name="ivr_menu_delete"),
    path(
        "menus/<int:menu_id>/options/new/",
        ivr_views.ivr_option_create,
        name="ivr_option_create",
    ),
    path("options/<int:option_id>/", ivr_views.ivr_option, name="ivr_option"),
    path("options/<int:option_id>/delete/", ivr_views.ivr_option_delete, name="ivr_option_delete"),
]
