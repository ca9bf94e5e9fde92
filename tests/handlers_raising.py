"""A handler module whose handler fails, for the error-path tests."""

from app.routing import Router

router = Router()


@router.default
def fail(message):
    raise RuntimeError("handler bug")
