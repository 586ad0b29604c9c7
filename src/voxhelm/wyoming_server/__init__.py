"""The Wyoming server for Home Assistant (``voxhelm-wyoming-stt``); framework-free."""
