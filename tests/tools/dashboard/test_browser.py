"""The dashboard in a real headless Chromium, over a real Redis and running pyqueue workers."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect
from tests.tools.dashboard.conftest import Harness

from pyqueue import Repeat

STATES = ("waiting", "active", "completed", "failed", "delayed", "paused")
XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'

Shoot = Callable[..., Path]


def _fail_when_asked(job: Any) -> Any:
    if job.data.get("fail"):
        raise RuntimeError(job.data.get("reason", "asked to fail"))
    return {"ok": job.data.get("n")}


def _row_counts(page: Page, queue: str) -> dict[str, str]:
    row = page.locator(f'tr[data-queue="{queue}"]')
    return {s: row.locator(f'[data-state="{s}"]').inner_text() for s in STATES}


def test_overview_shows_counts_paused_workers_and_updates_live(
    harness: Harness, page: Page, screenshot: Shoot
) -> None:
    worker = harness.start_worker("emails", _fail_when_asked)
    for n in range(4):
        harness.add("emails", {"n": n}, name="send")
    harness.add("emails", {"fail": True, "reason": "mailbox full"}, name="send")
    harness.wait_counts("emails", completed=4, failed=1)
    harness.stop_worker(worker)
    for n in range(3):
        harness.add("emails", {"n": n}, name="send")
    harness.add("emails", {"n": 9}, name="send", delay=3_600_000)
    harness.add("emails", {"n": 10}, name="send", delay=3_600_000)
    harness.run(harness.queue("reports").pause())
    harness.add("reports", {"day": "mon"}, name="daily")
    # A connected worker on the paused queue: counted, but it takes nothing.
    harness.start_worker("reports", _fail_when_asked)

    url = harness.serve()
    page.goto(url + "/")
    assert _row_counts(page, "emails") == {
        "waiting": "3", "active": "0", "completed": "4", "failed": "1", "delayed": "2",
        "paused": "0",
    }
    assert _row_counts(page, "reports")["paused"] == "1"
    reports = page.locator('tr[data-queue="reports"]')
    assert reports.locator('[data-field="paused"]').inner_text() == "yes"
    assert reports.locator('[data-field="workers"]').inner_text() == "1"
    emails = page.locator('tr[data-queue="emails"]')
    assert emails.locator('[data-field="paused"]').inner_text() == "no"
    assert emails.locator('[data-field="workers"]').inner_text() == "0"
    # The page agrees with Redis.
    for state, shown in _row_counts(page, "emails").items():
        assert int(shown) == harness.counts("emails")[state]

    # Live: new jobs show up without a reload, and the chart counted the finished ones.
    canvas = page.locator("#throughput")
    expect(canvas).to_have_attribute("data-completed-total", "4")
    harness.add("emails", {"n": 11}, name="send")
    harness.add("emails", {"n": 12}, name="send")
    expect(emails.locator('[data-state="waiting"]')).to_have_text("5")
    expect(page.locator("#throughput-source")).to_have_text("(from finished)")
    assert page.locator("#no-auth").is_visible()
    screenshot(page, "dashboard-overview")


def test_job_list_pages_like_bulls_getters(harness: Harness, page: Page, screenshot: Shoot) -> None:
    ids = [harness.add("big", {"n": n}, name="work") for n in range(45)]
    url = harness.serve()
    page.goto(url + "/queue?name=big&state=waiting")
    shown = page.locator("#jobs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.job)")
    # Bull's getWaiting(0, 19): the list's head, newest first.
    assert shown == list(reversed(ids))[:20]
    assert "page 1 of 3" in page.locator("#pages").inner_text()
    screenshot(page, "dashboard-queue")
    page.click("#pages a[rel=next]")
    page.click("#pages a[rel=next]")
    shown = page.locator("#jobs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.job)")
    assert shown == list(reversed(ids))[40:]
    assert "page 3 of 3" in page.locator("#pages").inner_text()


def test_search_finds_a_job_by_a_field_of_its_data(harness: Harness, page: Page) -> None:
    for n in range(30):
        harness.add("signups", {"user": {"email": f"user{n}@example.com", "n": n}}, name="welcome")
    url = harness.serve()
    page.goto(url + "/search")
    page.select_option("select[name=queue]", "signups")
    page.fill("input[name=data_path]", "user.email")
    page.fill("input[name=data_value]", "user17@example.com")
    page.click("#search-form button[type=submit]")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(1)
    job_id = rows.first.get_attribute("data-job")
    assert job_id == "18"  # the 18th job added
    rows.first.locator("a").click()
    expect(page.locator("#job-id")).to_have_text("18")
    assert '"user17@example.com"' in page.locator("#job-data").inner_text()

    # By number, JSON-typed: n = 17 matches, the string "17" does not.
    page.goto(url + "/search?queue=signups&data_path=user.n&data_value=17")
    expect(page.locator("#results tbody tr")).to_have_count(1)
    page.goto(url + '/search?queue=signups&data_path=user.n&data_value="17"')
    expect(page.locator("#results tbody tr")).to_have_count(0)
    page.goto(url + "/search?queue=signups&name=welcome")
    expect(page.locator("#results tbody tr")).to_have_count(30)
    page.goto(url + "/search?queue=signups&name=goodbye")
    expect(page.locator("#results tbody tr")).to_have_count(0)
    page.goto(url + "/search?queue=signups&id=3")
    assert page.locator("#results tbody tr").evaluate_all("r => r.map(x => x.dataset.job)") == ["3"]


def test_retrying_a_failed_job_from_its_page_makes_it_complete(
    harness: Harness, page: Page, screenshot: Shoot
) -> None:
    broken = {"on": True}

    def flaky(job: Any) -> Any:
        if broken["on"]:
            raise ValueError("payment service down")
        # Slow enough that the page shown after the retry has it unfinished.
        time.sleep(1.5)
        return {"charged": job.data["amount"]}

    harness.start_worker("payments", flaky)
    job_id = harness.add("payments", {"amount": 42}, name="charge")
    harness.wait_counts("payments", failed=1)
    url = harness.serve()
    page.goto(f"{url}/job?queue=payments&id={job_id}")
    expect(page.locator("#job-state")).to_have_text("failed")
    assert "payment service down" in page.locator("#job-failed-reason").inner_text()
    assert "ValueError" in page.locator("#job-stacktrace").inner_text()
    assert page.locator("#job-attempts").inner_text().startswith("1")
    screenshot(page, "dashboard-job-failed", full_page=True)

    broken["on"] = False
    page.click('#job-actions button[data-op="retry"]')
    expect(page.locator("#flash")).to_contain_text(f"Job {job_id} moved back to waiting")
    assert page.locator("#job-state").inner_text() in ("waiting", "active")
    # No reload by the test: the page follows the job until it finishes.
    expect(page.locator("#job-state")).to_have_text("completed", timeout=15_000)
    assert '"charged": 42' in page.locator("#job-return").inner_text()
    assert harness.state("payments", job_id) == "completed"
    # The flash was shown once: the page's own reload no longer has it.
    assert page.locator("#flash").count() == 0


def test_pause_and_resume_change_what_the_worker_does(harness: Harness, page: Page) -> None:
    done: list[str] = []

    def record(job: Any) -> None:
        done.append(job.id)

    harness.start_worker("mail", record)
    first = harness.add("mail", {"n": 1})
    harness.wait_counts("mail", completed=1)
    url = harness.serve()
    page.goto(url + "/queue?name=mail")
    page.click('#queue-actions button[data-op="pause"]')
    expect(page.locator("#flash")).to_contain_text("paused")
    expect(page.locator("#paused-badge")).to_be_visible()
    assert harness.run(harness.queue("mail").is_paused())

    second = harness.add("mail", {"n": 2})
    # The worker's blocking fetch (drain_delay 1 s) has had time to take it: it did not.
    time.sleep(2.0)
    assert done == [first]
    assert harness.state("mail", second) == "paused"

    page.click('#queue-actions button[data-op="resume"]')
    expect(page.locator("#flash")).to_contain_text("resumed")
    expect(page.locator("#paused-badge")).to_have_count(0)
    harness.wait_counts("mail", completed=2)
    assert done == [first, second]


def test_a_wrong_token_is_refused(harness: Harness, page: Page) -> None:
    harness.add("secret", {"n": 1})
    url = harness.serve(token="right-token-123")
    response = page.goto(url + "/?token=wrong-token")
    assert response is not None
    assert response.status == 401
    expect(page.locator("#message")).to_have_text("Wrong token.")
    assert page.locator('tr[data-queue="secret"]').count() == 0

    response = page.goto(url + "/queue?name=secret")
    assert response is not None
    assert response.status == 401
    page.goto(url + "/login")
    page.fill("input[name=token]", "still-wrong")
    page.click("#login-form button")
    expect(page.locator("#login-error")).to_have_text("Wrong token.")

    page.fill("input[name=token]", "right-token-123")
    page.click("#login-form button")
    expect(page.locator('tr[data-queue="secret"]')).to_have_count(1)
    assert page.locator("#no-auth").count() == 0
    # ?token= signs in too, and the token does not stay in the address bar.
    page.context.clear_cookies()
    page.goto(url + "/queue?name=secret&token=right-token-123")
    assert "token" not in page.url
    expect(page.locator("#queue-name")).to_have_text("secret")


def _refused(context: Any, url: str) -> bool:
    """The dashboard did not show: a 401, or Chromium giving up on the credentials.

    Headless Chromium has no prompt to show for WWW-Authenticate; whether it ends
    the navigation with a 401 or with ERR_INVALID_AUTH_CREDENTIALS varies.
    """
    page = context.new_page()
    try:
        response = page.goto(url)
    except PlaywrightError as exc:
        return "ERR_INVALID_AUTH_CREDENTIALS" in str(exc)
    return response is not None and response.status == 401 and (
        page.locator("tr[data-queue]").count() == 0
    )


def test_basic_auth(harness: Harness, chromium: Any) -> None:
    harness.add("hidden", {"n": 1})
    url = harness.serve(basic_auth=("ops", "s3cret-pass"))
    anonymous = chromium.new_context()
    wrong = chromium.new_context(http_credentials={"username": "ops", "password": "nope"})
    right = chromium.new_context(http_credentials={"username": "ops", "password": "s3cret-pass"})
    try:
        assert _refused(anonymous, url + "/")
        assert _refused(wrong, url + "/")
        page = right.new_page()
        response = page.goto(url + "/")
        assert response is not None
        assert response.status == 200
        expect(page.locator('tr[data-queue="hidden"]')).to_have_count(1)
    finally:
        for context in (anonymous, wrong, right):
            context.close()


@pytest.mark.parametrize("queue_name", ["xss", '<img src=x onerror="window.__pwned = 3">'])
def test_an_xss_payload_in_redis_stays_inert(
    harness: Harness, page: Page, queue_name: str
) -> None:
    def fail_with_payload(job: Any) -> None:
        raise RuntimeError(XSS)

    harness.start_worker(queue_name, fail_with_payload)

    async def add_with_log() -> str:
        job = await harness.queue(queue_name).add({"html": XSS, "nested": {"k": XSS}}, name=XSS)
        await job.log(XSS)
        await job.progress(XSS)
        return job.id

    job_id = harness.run(add_with_log())
    harness.wait_counts(queue_name, failed=1)
    url = harness.serve()
    pages = [
        url + "/",
        f"{url}/queue?{_q(name=queue_name, state='failed')}",
        f"{url}/job?{_q(queue=queue_name, id=job_id)}",
        f"{url}/search?{_q(queue=queue_name, text='script')}",
        f"{url}/search?{_q(queue=queue_name, failed_reason='pwned')}",
    ]
    for address in pages:
        page.goto(address)
        page.wait_for_load_state("load")
        time.sleep(0.3)  # let an onerror handler fire, were there one
        assert page.evaluate("window.__pwned") is None, address
        assert page.locator("img[src=x]").count() == 0, address
        assert page.locator("script:not([src])").count() == 0, address
    # Shown as text, exactly as stored.
    page.goto(f"{url}/job?{_q(queue=queue_name, id=job_id)}")
    # In the data it is a JSON string, its quotes escaped.
    assert XSS.replace('"', '\\"') in page.locator("#job-data").inner_text()
    assert XSS in page.locator("#job-failed-reason").inner_text()
    assert XSS in page.locator("#job-logs").inner_text()
    assert page.locator("#job-name").inner_text() == XSS


def _q(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def test_bulk_actions_ask_first_then_show_the_result(harness: Harness, page: Page) -> None:
    worker = harness.start_worker("batch", _fail_when_asked)
    for n in range(3):
        harness.add("batch", {"fail": True, "n": n})
    for n in range(2):
        harness.add("batch", {"n": n})
    harness.wait_counts("batch", failed=3, completed=2)
    harness.stop_worker(worker)
    url = harness.serve()
    page.goto(url + "/queue?name=batch&state=failed")
    page.click('#queue-actions button[data-op="retry_all"]')
    expect(page.locator("#confirm-what")).to_contain_text("3 job(s)")
    assert harness.counts("batch")["failed"] == 3  # nothing done before confirming
    page.click("#confirm-yes")
    expect(page.locator("#flash")).to_have_text("Retried 3 failed job(s) of batch.")
    assert harness.counts("batch")["waiting"] == 3

    page.goto(url + "/queue?name=batch&state=completed")
    page.select_option("#clean-form select[name=state]", "completed")
    page.fill("#clean-form input[name=age]", "0")
    # The form asks how many at most (never "all" by default), and the count is exact.
    assert page.locator("#clean-form input[name=limit]").input_value() == "1000"
    page.click('#clean-form button[data-op="clean"]')
    expect(page.locator("#confirm-what")).to_contain_text("delete 2 completed job(s)")
    page.click("#confirm-yes")
    expect(page.locator("#flash")).to_have_text("Cleaned 2 completed job(s) of batch in 1 call(s).")
    assert harness.counts("batch")["completed"] == 0


def test_remove_and_promote_one_job(harness: Harness, page: Page) -> None:
    later = harness.add("mixed", {"n": 1}, delay=3_600_000)
    doomed = harness.add("mixed", {"n": 2})
    url = harness.serve()
    page.goto(url + "/queue?name=mixed&state=delayed")
    page.locator(f'tr[data-job="{later}"] button[data-op="promote"]').click()
    expect(page.locator("#flash")).to_have_text(f"Job {later} promoted to waiting.")
    assert harness.state("mixed", later) == "waiting"
    page.goto(f"{url}/job?queue=mixed&id={doomed}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click('#job-actions button[data-op="remove"]')
    expect(page.locator("#flash")).to_have_text(f"Job {doomed} removed.")
    assert harness.run(harness.queue("mixed").get_job(doomed)) is None


def test_read_only_hides_every_action(harness: Harness, page: Page) -> None:
    worker = harness.start_worker("ro", _fail_when_asked)
    job_id = harness.add("ro", {"fail": True})
    harness.wait_counts("ro", failed=1)
    harness.stop_worker(worker)
    harness.add("ro", {"n": 1}, delay=60_000)
    url = harness.serve(read_only=True)
    for address in (f"{url}/queue?name=ro&state=failed", f"{url}/queue?name=ro&state=delayed",
                    f"{url}/job?queue=ro&id={job_id}", f"{url}/"):
        page.goto(address)
        assert page.locator("form[method=post]").count() == 0, address
        assert page.locator("button[data-op]").count() == 0, address
    expect(page.locator("#read-only")).to_be_visible()


def test_repeatable_jobs_with_next_run(harness: Harness, page: Page) -> None:
    harness.add("cron", {"kind": "digest"}, name="digest", repeat=Repeat(cron="0 7 * * *"))
    harness.add("cron", {"kind": "tick"}, name="tick", repeat=Repeat(every=60_000))
    entries = harness.run(harness.queue("cron").get_repeatable_jobs(asc=True))
    url = harness.serve()
    page.goto(url + "/repeatable?name=cron")
    rows = page.locator("#repeatable tbody tr")
    expect(rows).to_have_count(2)
    text = page.locator("#repeatable").inner_text()
    assert "0 7 * * *" in text
    assert "every 60000 ms" in text
    next_runs = rows.locator(".next-run").all_inner_texts()
    assert next_runs == [
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["next"] / 1000))
        + f".{e['next'] % 1000:03d} UTC"
        for e in entries
    ]


def test_mounted_in_a_starlette_app(harness: Harness, page: Page) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from pyqueue.tools.dashboard import mount

    host = Starlette(routes=[Route("/", lambda request: PlainTextResponse("host app"))])
    dash = mount(host, "/ops/queues", harness.redis_url, harness.prefix)
    harness.add("inner", {"n": 1})
    url = harness.serve(host)
    try:
        page.goto(url + "/")
        assert page.inner_text("body") == "host app"
        page.goto(url + "/ops/queues/")
        page.click('tr[data-queue="inner"] a >> nth=0')
        expect(page.locator("#queue-name")).to_have_text("inner")
        assert page.url.startswith(url + "/ops/queues/queue?")
        page.click('#queue-actions button[data-op="pause"]')
        expect(page.locator("#flash")).to_contain_text("paused")
        assert harness.run(harness.queue("inner").is_paused())
        # The live feed is fetched under the mount path too.
        expect(page.locator("#throughput")).to_have_attribute("data-completed-total", "0")
    finally:
        harness.run(dash.aclose())
