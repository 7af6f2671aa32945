"""Request context carried in a context variable.

The middleware sets it for the duration of a request; records logged anywhere during that request
(thread or asyncio task alike) pick it up. The user is resolved only when a record asks for it, so
requests that log nothing never load their session.
"""
import threading

from .compat import ContextVar

_current = ContextVar("applogs_request_context", default=None)
# Resolving request.user may run SQL, which may be logged, whose filter may ask for the user again.
_resolving = threading.local()

UNKNOWN = "--"


class RequestContext:
    __slots__ = ("ip", "request_id", "_request", "_user")

    def __init__(self, ip=UNKNOWN, request_id="", request=None, user=None):
        self.ip = ip
        self.request_id = request_id
        self._request = request
        self._user = user

    @property
    def user(self):
        if self._user is None:
            if getattr(_resolving, "active", False):
                return UNKNOWN  # re-entered while resolving; do not cache
            self._user = user_of(self._request)
        return self._user


def user_of(request):
    """Username of request.user, '--' when anonymous, missing or unavailable. Never raises."""
    if request is None or getattr(_resolving, "active", False):
        return UNKNOWN
    _resolving.active = True
    try:
        # A user already loaded (sync or async auth) is used as is: no query, which an async
        # view could not run here anyway.
        d = getattr(request, "__dict__", {})
        user = d.get("_cached_user") or d.get("_acached_user")
        if user is None:
            user = getattr(request, "user", None)
        if user is None or not getattr(user, "is_authenticated", False):
            return UNKNOWN
        get_username = getattr(user, "get_username", None)
        name = get_username() if get_username else str(user)
        return str(name) or UNKNOWN
    except Exception:
        # A session store that is down, or an async view touching a lazy user: no name, no error.
        return UNKNOWN
    finally:
        _resolving.active = False


def current():
    """The RequestContext of the request being served, or None."""
    return _current.get()


def activate(ctx):
    """Set the context; returns the token for deactivate()."""
    return _current.set(ctx)


def deactivate(token):
    _current.reset(token)
