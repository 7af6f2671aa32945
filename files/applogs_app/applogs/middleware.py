"""RequestContextMiddleware: request ip, user and id in a context variable for the request's duration."""
import re
import uuid

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from . import context
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
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def _enter(self, request):
        request.request_id = request_id_for(request)
        # The user stays unresolved until a record asks for it: no session lookup otherwise.
        return context.activate(context_for_request(request))

    @staticmethod
    def _finish(request, response):
        if response is not None and not response.has_header(HEADER):
            response[HEADER] = request.request_id
        return response

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
