"""RequestContextMiddleware: request ip, user and id in a context variable for the request's duration."""
import re
import uuid

from . import context
from .compat import iscoroutinefunction, markcoroutinefunction
from .filters import context_for_request

HEADER = "X-Request-ID"
# A request id from outside is kept only if it is short and harmless in logs and headers.
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id_for(request):
    rid = request.META.get("HTTP_X_REQUEST_ID", "")
    if rid and _VALID_ID.match(rid):
        return rid
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """In MIDDLEWARE (sync or async) as a callable; in a Django 1.11 portal's MIDDLEWARE_CLASSES
    through process_request/process_response, which Django only calls there."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response=None):
        self.get_response = get_response
        self.async_mode = get_response is not None and iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def _enter(self, request):
        request.request_id = request_id_for(request)
        # The user stays unresolved until a record asks for it: no session lookup otherwise.
        return context.activate(context_for_request(request))

    @staticmethod
    def _finish(request, response):
        request_id = getattr(request, "request_id", None)
        if response is not None and request_id and not response.has_header(HEADER):
            response[HEADER] = request_id
        return response

    # MIDDLEWARE_CLASSES (old-style middleware).
    def process_request(self, request):
        request._applogs_context_token = self._enter(request)

    def process_response(self, request, response):
        token = getattr(request, "_applogs_context_token", None)
        if token is not None:
            del request._applogs_context_token
            context.deactivate(token)
        return self._finish(request, response)

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        token = self._enter(request)
        try:
            response = self.get_response(request)
        finally:
            context.deactivate(token)
        return self._finish(request, response)

    async def __acall__(self, request):
        token = self._enter(request)
        try:
            response = await self.get_response(request)
        finally:
            context.deactivate(token)
        return self._finish(request, response)
