"""RequestContextFilter and RequestContextMiddleware."""
import asyncio
import logging
import socket
import threading

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpResponse
from django.test import RequestFactory

from applogs import context
from applogs.compat import ASYNC_CONTEXT, DJANGO, path
from applogs.filters import RequestContextFilter, client_ip
from applogs.middleware import RequestContextMiddleware
from applogs.models import LogRecord

factory = RequestFactory()


def make_record(**attrs):
    record = logging.LogRecord("api", logging.INFO, __file__, 1, "msg", (), None)
    record.__dict__.update(attrs)
    return record


def filtered(**attrs):
    record = make_record(**attrs)
    assert RequestContextFilter().filter(record) is True
    return record


class NamedUser:
    is_authenticated = True

    def __init__(self, name):
        self.name = name

    def get_username(self):
        return self.name


# --- filter -----------------------------------------------------------------------------------

def test_filter_with_a_request():
    request = factory.get("/x", REMOTE_ADDR="10.0.0.5")
    request.user = NamedUser("ivanov")
    record = filtered(request=request)
    assert (record.ip, record.user, record.request_id) == ("10.0.0.5", "ivanov", "")


def test_filter_anonymous_user_and_no_user_attribute():
    request = factory.get("/x", REMOTE_ADDR="10.0.0.5")
    request.user = AnonymousUser()
    assert filtered(request=request).user == "--"
    assert filtered(request=factory.get("/x")).user == "--"


def test_filter_without_a_request_and_outside_any_request():
    record = filtered()
    assert (record.ip, record.user, record.request_id) == ("--", "--", "")
    # The document's formatter works on it.
    fmt = logging.Formatter('%(levelname)s %(ip)s "%(user)s" %(name)s.%(module)s %(message)s')
    assert fmt.format(record) == 'INFO -- "--" api.test_context msg'


def test_filter_with_a_socket_in_record_request_neither_breaks_nor_lies():
    # django.server puts the socket there; F read attributes off it.
    a, b = socket.socketpair()
    try:
        record = filtered(request=a)
        assert (record.ip, record.user) == ("--", "--")
        # Inside a request the socket is ignored and the request's context is used.
        token = context.activate(context.RequestContext(ip="192.0.2.1", request_id="rid1",
                                                        user="petrov"))
        try:
            record = filtered(request=a)
        finally:
            context.deactivate(token)
        assert (record.ip, record.user, record.request_id) == ("192.0.2.1", "petrov", "rid1")
    finally:
        a.close()
        b.close()


def test_filter_with_a_drf_like_wrapper():
    class Wrapper:  # rest_framework.request.Request keeps the HttpRequest in _request
        def __init__(self, request):
            self._request = request

    request = factory.get("/x", REMOTE_ADDR="10.1.1.1")
    request.user = NamedUser("api-client")
    record = filtered(request=Wrapper(request))
    assert (record.ip, record.user) == ("10.1.1.1", "api-client")


def test_a_record_about_another_request_is_described_by_that_request():
    # django.request logs the request it is about; inside another request's context that one's
    # address, user and id would be wrong.
    served = factory.get("/served", REMOTE_ADDR="10.0.0.1")
    other = factory.get("/other", REMOTE_ADDR="10.0.0.2")
    other.user = NamedUser("other-user")
    token = context.activate(context.RequestContext(ip="10.0.0.1", request_id="rid-served",
                                                    request=served, user="served-user"))
    try:
        record = filtered(request=other)
    finally:
        context.deactivate(token)
    assert (record.ip, record.user, record.request_id) == ("10.0.0.2", "other-user", "")


def test_a_request_the_filter_cannot_read_gives_dashes_and_no_request_id():
    request = factory.get("/x", REMOTE_ADDR="10.0.0.4")
    request.META = None  # not a mapping: reading the address fails inside the filter
    record = filtered(request=request)
    assert (record.ip, record.user, record.request_id) == ("--", "--", "")


def test_filter_survives_a_user_that_raises():
    class Broken:
        @property
        def user(self):
            raise RuntimeError("session store down")

    request = factory.get("/x", REMOTE_ADDR="10.0.0.9")
    request.__class__ = type("R", (type(request), Broken), {})
    record = filtered(request=request)
    assert (record.ip, record.user) == ("10.0.0.9", "--")


@pytest.mark.parametrize("xff, proxies, expected", [
    (None, 1, "10.0.0.1"),
    ("203.0.113.7", 1, "203.0.113.7"),                    # F: last hop
    ("1.1.1.1, 203.0.113.7", 1, "203.0.113.7"),           # a forged first entry is ignored
    ("1.1.1.1, 203.0.113.7, 10.9.9.9", 2, "203.0.113.7"), # two proxies of ours
    ("203.0.113.7", 3, "203.0.113.7"),                    # fewer hops than proxies
    ("1.1.1.1", 0, "10.0.0.1"),                           # no trusted proxy: header ignored
    (" , ", 1, "10.0.0.1"),
])
def test_client_ip_trusted_proxies(xff, proxies, expected):
    meta = {"REMOTE_ADDR": "10.0.0.1"}
    if xff is not None:
        meta["HTTP_X_FORWARDED_FOR"] = xff
    assert client_ip(meta, proxies) == expected


def test_client_ip_setting(settings):
    settings.APPLOGS_TRUSTED_PROXIES = 0
    request = factory.get("/x", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6")
    assert filtered(request=request).ip == "10.0.0.1"


# --- middleware -------------------------------------------------------------------------------

def test_middleware_sets_and_clears_the_context_and_echoes_the_request_id():
    seen = {}

    def view(request):
        ctx = context.current()
        seen["ctx"] = (ctx.ip, ctx.request_id)
        seen["record"] = filtered()
        return HttpResponse("ok")

    mw = RequestContextMiddleware(view)
    response = mw(factory.get("/x", REMOTE_ADDR="10.2.2.2", HTTP_X_REQUEST_ID="abc-123"))
    assert seen["ctx"] == ("10.2.2.2", "abc-123")
    assert (seen["record"].ip, seen["record"].request_id) == ("10.2.2.2", "abc-123")
    assert response["X-Request-ID"] == "abc-123"
    assert context.current() is None

    response = mw(factory.get("/x", HTTP_X_REQUEST_ID="bad id with spaces\r\nX: y"))
    rid = response["X-Request-ID"]
    assert len(rid) == 32 and int(rid, 16) >= 0  # a new uuid4 hex instead


def test_middleware_clears_the_context_when_the_view_raises():
    def view(request):
        raise ValueError("boom")

    with pytest.raises(ValueError):
        RequestContextMiddleware(view)(factory.get("/x"))
    assert context.current() is None


def test_middleware_does_not_touch_the_user_unless_a_record_is_logged():
    touched = []

    def view_silent(request):
        return HttpResponse("ok")

    def view_logging(request):
        filtered()
        return HttpResponse("ok")

    def make_request():
        request = factory.get("/x")
        cls = type(request)

        def user(self):
            touched.append(1)
            return NamedUser("lazy")

        request.__class__ = type("Lazy", (cls,), {"user": property(user)})
        return request

    RequestContextMiddleware(view_silent)(make_request())
    assert touched == []
    RequestContextMiddleware(view_logging)(make_request())
    assert touched == [1]


@pytest.mark.django_db(databases=["default"])
def test_middleware_in_the_full_stack_does_not_load_the_session_of_silent_requests(client, settings):
    # Through the real middleware stack (sessions, auth): a request that logs nothing leaves the
    # session unaccessed.
    captured = {}

    def silent(request):
        captured["request"] = request
        return HttpResponse("ok")

    import tests.urls as urls

    old = list(urls.urlpatterns)
    urls.urlpatterns.append(path("silent-probe/", silent))
    try:
        from django.urls import clear_url_caches

        clear_url_caches()
        response = client.get("/silent-probe/")
    finally:
        urls.urlpatterns[:] = old
        clear_url_caches()
    assert response.status_code == 200
    assert len(response["X-Request-ID"]) == 32
    assert captured["request"].session.accessed is False


def test_context_isolation_between_threads():
    barrier = threading.Barrier(8)
    results = {}

    def serve(i):
        def view(request):
            barrier.wait(30)  # all eight requests are in flight at once
            record = filtered()
            results[i] = (record.ip, record.request_id)
            return HttpResponse("ok")

        RequestContextMiddleware(view)(
            factory.get("/x", REMOTE_ADDR="10.0.0.%d" % i, HTTP_X_REQUEST_ID="req-%d" % i))

    threads = [threading.Thread(target=serve, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: ("10.0.0.%d" % i, "req-%d" % i) for i in range(8)}


needs_async = pytest.mark.skipif(
    not ASYNC_CONTEXT, reason="async views need Django 3.1+, context variables Python 3.7+")


@needs_async
def test_context_isolation_between_asyncio_tasks():
    async def run():
        started = asyncio.Event()
        count = {"n": 0}

        async def view(request):
            count["n"] += 1
            if count["n"] == 8:
                started.set()
            await started.wait()  # all eight tasks interleave here
            record = filtered()
            return HttpResponse("%s %s" % (record.ip, record.request_id))

        mw = RequestContextMiddleware(view)
        assert asyncio.iscoroutinefunction(mw) or mw.async_mode
        responses = await asyncio.gather(*[
            mw(factory.get("/x", REMOTE_ADDR="10.0.1.%d" % i, HTTP_X_REQUEST_ID="a-%d" % i))
            for i in range(8)
        ])
        assert context.current() is None
        return [r.content.decode() for r in responses]

    assert asyncio.run(run()) == ["10.0.1.%d a-%d" % (i, i) for i in range(8)]


@pytest.mark.django_db(databases=["default", "applogs"], transaction=True)
def test_records_logged_during_a_request_carry_ip_user_and_request_id(logs):
    def view(request):
        request.user = NamedUser("sidorov")
        logging.getLogger("api").info("served")
        logging.getLogger("remote_service").warning("called out")
        return HttpResponse("ok")

    response = RequestContextMiddleware(view)(
        factory.get("/x", REMOTE_ADDR="10.3.3.3", HTTP_X_REQUEST_ID="req-db"))
    assert response["X-Request-ID"] == "req-db"
    assert logs.flush(30)
    got = list(LogRecord.objects.order_by("id").values_list("logger", "ip", "user", "request_id"))
    assert got == [("api", "10.3.3.3", "sidorov", "req-db"),
                   ("remote_service", "10.3.3.3", "sidorov", "req-db")]


@pytest.mark.django_db(databases=["default"])
def test_real_user_from_auth():
    user = User.objects.create_user("kuznetsov", password="x")
    request = factory.get("/x")
    request.user = user
    assert filtered(request=request).user == "kuznetsov"


def test_a_user_already_loaded_is_used_without_touching_request_user():
    # AuthenticationMiddleware keeps the user it loaded in request._cached_user; reading
    # request.user again could run a query where none may run (an async view).
    class NotHere:
        @property
        def user(self):
            raise RuntimeError("request.user must not be evaluated")

    request = factory.get("/x")
    request.__class__ = type("R", (type(request), NotHere), {})
    request._cached_user = NamedUser("petrova")
    assert filtered(request=request).user == "petrova"


def test_a_user_that_is_not_authenticated_or_does_not_say_has_no_name():
    class Unauthenticated(NamedUser):
        is_authenticated = False

    class Silent:  # neither authenticated nor anonymous: nothing to trust
        def get_username(self):
            return "nobody-knows"

    for user in (Unauthenticated("guest"), Silent()):
        request = factory.get("/x")
        request.user = user
        assert filtered(request=request).user == "--"


def test_a_user_whose_loading_logs_is_resolved_once_without_recursion():
    # Loading request.user runs SQL that django.db.backends logs; with the filter on that logger's
    # handler too, the SQL record asks for the user while it is being resolved.
    records = []

    class Capture(logging.Handler):
        def emit(self, record):
            records.append((record.getMessage(), record.user))

    handler = Capture()
    handler.addFilter(RequestContextFilter())
    logger = logging.getLogger("applogs.tests.user_loading")
    logger.addHandler(handler)
    logger.propagate = False

    class LoadsWithSql:
        @property
        def user(self):
            logger.warning("SELECT FROM auth_user")
            return NamedUser("sidorov")

    request = factory.get("/x")
    request.__class__ = type("R", (type(request), LoadsWithSql), {})
    token = context.activate(context.RequestContext(ip="10.0.0.3", request=request))
    try:
        logger.warning("first")
        logger.warning("second")
    finally:
        context.deactivate(token)
        logger.removeHandler(handler)
    assert records == [("SELECT FROM auth_user", "--"), ("first", "sidorov"), ("second", "sidorov")]


@needs_async
def test_async_view_user_already_loaded_by_auser():
    # In an async view request.user would need a query (not allowed there); a user that
    # request.auser() already loaded is used instead.
    async def run():
        async def view(request):
            request._acached_user = NamedUser("async-user")
            return HttpResponse(filtered().user)

        return await RequestContextMiddleware(view)(factory.get("/x"))

    assert asyncio.run(run()).content == b"async-user"


@needs_async
@pytest.mark.django_db(databases=["default"])
def test_async_view_with_an_unloaded_lazy_user_gets_dashes_not_an_error():
    from django.contrib.auth.middleware import AuthenticationMiddleware
    from django.contrib.sessions.middleware import SessionMiddleware

    async def run():
        async def view(request):
            return HttpResponse(filtered().user)

        request = factory.get("/x")
        SessionMiddleware(lambda r: None).process_request(request)
        AuthenticationMiddleware(lambda r: None).process_request(request)
        return await RequestContextMiddleware(view)(request)

    assert asyncio.run(run()).content == b"--"


PORTAL_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "applogs.middleware.RequestContextMiddleware",
]


@pytest.mark.parametrize("setting", [
    "MIDDLEWARE",
    pytest.param("MIDDLEWARE_CLASSES", marks=pytest.mark.skipif(
        DJANGO >= (2, 0), reason="MIDDLEWARE_CLASSES is gone since Django 2.0")),
])
@pytest.mark.django_db(databases=["default", "applogs"], transaction=True)
def test_middleware_in_a_portals_settings(logs, settings, client, setting):
    """A portal lists the middleware in MIDDLEWARE, or (Django 1.11) in MIDDLEWARE_CLASSES."""
    if setting == "MIDDLEWARE_CLASSES":
        settings.MIDDLEWARE = None  # what makes Django 1.11 use MIDDLEWARE_CLASSES
        settings.MIDDLEWARE_CLASSES = PORTAL_MIDDLEWARE
    else:
        settings.MIDDLEWARE = PORTAL_MIDDLEWARE
    client.force_login(User.objects.create_user("petrov", password="x"))
    response = client.get("/log-probe/", REMOTE_ADDR="10.4.4.4", HTTP_X_REQUEST_ID="req-mw")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-mw"
    assert context.current() is None  # deactivated when the response left the middleware
    assert logs.flush(30)
    assert list(LogRecord.objects.values_list("logger", "message", "ip", "user", "request_id")) == [
        ("api", "probe", "10.4.4.4", "petrov", "req-mw")]
