"""The model cache as the engines see it: which models can be pulled and where a pulled one
lives. It imports no engine, so the engines may use it; :mod:`voxhelm.modelstore` builds on
it (and on the engines) to list, pull and remove models."""
