from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "voxhelm.console"
    label = "voxhelm_console"
    verbose_name = "Voxhelm operator console"
