#!/usr/bin/env python3
"""HTTP half of molecule's verify, run on the controller (the docker host) with .venv/tools' python.

Against one deployed portal (http://<container ip>:<port>/):
  1. <prefix> answers an anonymous user with a redirect to the portal's login page (which is a real
     login form, not the portal's catch-all page);
  2. after logging in (session cookie, CSRF) as a user with applogs.view_logrecord, <prefix> is 200;
  3. GET api/ping/?marker=M (the fixture view logging through the `api` logger and its child
     `api.orders`) produces rows, both with that request's ip and user (polled in the database with
     `docker exec <db container> psql`; the time they took is reported, and only a wait past
     --within, 30 s by default, 30 times the handler's 1 s flush interval, is a failure);
  4. <prefix>export/?q=M answers an XLSX workbook that openpyxl opens, with the marker in it;
  5. `manage.py portal_tick M` (logging through the `command` logger) leaves its row (docker exec).
Prints one JSON object with what it saw; exits non-zero naming the first failed check.
"""
import argparse
import io
import json
import subprocess
import sys
import time
import uuid

import openpyxl
import requests

# A bound against a hung portal, not a speed check: a freshly restarted worker on a loaded test
# machine may take many seconds to import Django and answer its first request.
TIMEOUT = 120


def fail(msg, **seen):
    print(json.dumps({'ok': False, 'failed': msg, **seen}, default=str, indent=1))
    sys.exit(1)


def sql(args, query):
    out = subprocess.run(
        ['docker', 'exec', '-u', 'postgres', args.db_container,
         'psql', '-X', '-q', '-t', '-A', '-F', '\t', '-d', args.db_name, '-c', query],
        check=True, capture_output=True, text=True).stdout
    return [line.split('\t') for line in out.splitlines() if line]


def poll_rows(args, query, start):
    """Rows of query, polling until there is one or --within seconds after start."""
    while True:
        rows = sql(args, query)
        elapsed = time.monotonic() - start
        if rows or elapsed > args.within:
            return rows, elapsed
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--base', required=True, help='http://host:port/')
    ap.add_argument('--prefix', default='applogs/')
    ap.add_argument('--login-path', default='accounts/login/')
    ap.add_argument('--user', required=True)
    ap.add_argument('--password', required=True)
    ap.add_argument('--db-container', required=True)
    ap.add_argument('--db-name', required=True)
    ap.add_argument('--expect-ip', required=True, help="the controller's address as the portal sees it")
    ap.add_argument('--within', type=float, default=30.0)
    ap.add_argument('--portal-container', help='run manage.py portal_tick there (the command logger check)')
    ap.add_argument('--portal-name')
    ap.add_argument('--portal-dir')
    args = ap.parse_args()
    base = args.base.rstrip('/') + '/'
    seen = {}

    # 1. anonymous: redirect to the login page
    r = requests.get(base + args.prefix, allow_redirects=False, timeout=TIMEOUT)
    seen['anonymous_status'] = r.status_code
    seen['anonymous_location'] = r.headers.get('Location')
    if r.status_code != 302 or '/' + args.login_path not in (r.headers.get('Location') or ''):
        fail('anonymous request to the viewer is not redirected to the login page', **seen)
    r = requests.get(requests.compat.urljoin(base + args.prefix, r.headers['Location']), timeout=TIMEOUT)
    if r.status_code != 200 or 'csrfmiddlewaretoken' not in r.text:
        fail('the login redirect does not lead to a login form', login_status=r.status_code, **seen)

    # 2. log in with a session, then the viewer answers 200
    s = requests.Session()
    login_url = base + args.login_path
    r = s.get(login_url, timeout=TIMEOUT)
    token = s.cookies.get('csrftoken')
    r = s.post(login_url, data={'username': args.user, 'password': args.password,
                                'csrfmiddlewaretoken': token, 'next': '/' + args.prefix},
               headers={'Referer': login_url}, allow_redirects=False, timeout=TIMEOUT)
    seen['login_status'] = r.status_code
    if r.status_code != 302 or 'sessionid' not in s.cookies:
        fail('login failed', **seen)
    r = s.get(base + args.prefix, allow_redirects=False, timeout=TIMEOUT)
    seen['viewer_status'] = r.status_code
    if r.status_code != 200:
        fail('the viewer does not answer 200 to a user with applogs.view_logrecord', **seen)

    # 3. a request to the api view produces rows with that request's ip and user
    marker = 'ping-' + uuid.uuid4().hex[:12]
    r = s.get(base + 'api/ping/', params={'marker': marker}, timeout=TIMEOUT)
    start = time.monotonic()
    if r.status_code != 200:
        fail('api/ping/ failed', api_status=r.status_code, **seen)
    seen['api_response'] = r.json()
    rows, elapsed = poll_rows(
        args, "SELECT logger, ip, \"user\", message FROM applogs_logrecord "
              "WHERE logger = 'api' AND message LIKE '%%%s%%'" % marker, start)
    seen['api_rows'] = rows
    seen['api_row_after_s'] = round(elapsed, 3)
    if not rows:
        fail('no applogs_logrecord row for the api request within %.1f s' % args.within, **seen)
    _, ip, user, _ = rows[0]
    if ip != args.expect_ip or user != args.user:
        fail('the api row does not carry the request\'s ip and user (expected %s, %s)'
             % (args.expect_ip, args.user), **seen)
    child, _ = poll_rows(
        args, "SELECT logger, ip, \"user\" FROM applogs_logrecord "
              "WHERE logger = 'api.orders' AND message LIKE '%%%s%%'" % marker, start)
    seen['api_orders_rows'] = child
    if not child:
        fail("no row for the 'api.orders' child logger", **seen)
    _, ip, user = child[0]
    if ip != args.expect_ip or user != args.user:
        fail("the 'api.orders' row does not carry the request's ip and user (expected %s, %s)"
             % (args.expect_ip, args.user), **seen)

    # 4. the XLSX export of the list's query opens with openpyxl and holds the marker
    r = s.get(base + args.prefix + 'export/', params={'q': marker}, timeout=TIMEOUT)
    seen['export_status'] = r.status_code
    seen['export_content_type'] = r.headers.get('Content-Type')
    if r.status_code != 200:
        fail('the export did not answer 200', **seen)
    try:
        wb = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
    except Exception as exc:  # noqa: BLE001 - report whatever openpyxl says
        fail('the export is not a workbook openpyxl opens: %s' % exc, **seen)
    cells = [str(c) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for c in row]
    seen['export_cells'] = len(cells)
    if not any(marker in c for c in cells):
        fail('the export does not contain the api record', **seen)

    # 5. a manage.py command's 'command' logger record lands (the process exits right after logging)
    if args.portal_container:
        marker = 'tick-' + uuid.uuid4().hex[:12]
        subprocess.run(
            ['docker', 'exec', '-u', args.portal_name, '-w', args.portal_dir, args.portal_container,
             'bash', '-c', 'set -a; . /etc/default/%s; set +a; venv/bin/python manage.py portal_tick %s'
             % (args.portal_name, marker)], check=True, capture_output=True, text=True)
        start = time.monotonic()
        rows, elapsed = poll_rows(
            args, "SELECT logger, message FROM applogs_logrecord "
                  "WHERE logger = 'command' AND message LIKE '%%%s%%'" % marker, start)
        seen['command_rows'] = rows
        seen['command_row_after_s'] = round(elapsed, 3)
        if not rows:
            fail("no row for the manage.py command's 'command' logger record", **seen)

    print(json.dumps({'ok': True, **seen}, default=str, indent=1))


if __name__ == '__main__':
    main()
