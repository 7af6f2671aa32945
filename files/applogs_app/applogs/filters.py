"""RequestContextFilter: the working successor of the install document's filter F."""
import logging

from . import conf
from .context import UNKNOWN, RequestContext, current, user_of


def client_ip(meta, trusted_proxies=None):
    """The client address from a WSGI/ASGI META dict.

    With N trusted proxies each of them appended the address it saw to X-Forwarded-For, so the
    client is the Nth entry from the right (N=1, the default, is F's "last hop"). Entries further
    left were written by the client and prove nothing. N=0 ignores the header.
    """
    if trusted_proxies is None:
        trusted_proxies = conf.get("TRUSTED_PROXIES")
    remote = meta.get("REMOTE_ADDR") or UNKNOWN
    xff = meta.get("HTTP_X_FORWARDED_FOR")
    if trusted_proxies <= 0 or not xff:
        return remote
    hops = [h.strip() for h in xff.split(",") if h.strip()]
    if not hops:
        return remote
    return hops[-trusted_proxies] if len(hops) >= trusted_proxies else hops[0]


_HttpRequest = None


def as_http_request(obj):
    """obj if it is an HttpRequest (or wraps one, like DRF's Request), else None."""
    global _HttpRequest
    if obj is None:
        return None
    if _HttpRequest is None:
        from django.http import HttpRequest  # not at import: logging is configured early

        _HttpRequest = HttpRequest
    HttpRequest = _HttpRequest
    if isinstance(obj, HttpRequest):
        return obj
    inner = getattr(obj, "_request", None)
    if isinstance(inner, HttpRequest):
        return inner
    return None


def context_for_request(request):
    return RequestContext(
        ip=client_ip(request.META),
        request_id=getattr(request, "request_id", "") or "",
        request=request,
    )


class RequestContextFilter(logging.Filter):
    """Sets record.ip, record.user ('--' when unknown) and record.request_id; never filters out.

    From record.request when it is an HttpRequest (django.request, django.security), otherwise from
    the context the middleware set for the request being served. Anything else in record.request
    (the socket that django.server puts there) is ignored rather than trusted.
    """

    def filter(self, record):
        try:
            request = as_http_request(getattr(record, "request", None))
            if request is not None:
                ctx = current()
                if ctx is None or ctx._request is not request:
                    ctx = context_for_request(request)
                ip, user, request_id = ctx.ip, ctx.user, ctx.request_id
            else:
                ctx = current()
                if ctx is None:
                    ip, user, request_id = UNKNOWN, UNKNOWN, ""
                else:
                    ip, user, request_id = ctx.ip, ctx.user, ctx.request_id
        except Exception:
            ip, user, request_id = UNKNOWN, UNKNOWN, ""
        record.ip = ip or UNKNOWN
        record.user = user or UNKNOWN
        record.request_id = request_id or ""
        return True


__all__ = ["RequestContextFilter", "client_ip", "user_of"]
