"""The batch core: what one batch job asks for, framework-free."""
