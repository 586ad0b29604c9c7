"""The model store: what is installed, pulls from the Hub, removal, and the lists every
surface shows. It uses the engines; they use only :mod:`voxhelm.modelcache`."""
