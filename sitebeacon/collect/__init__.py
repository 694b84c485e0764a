"""The collect side: the receiver's ASGI app, validation, the group-commit writer, the stores."""
