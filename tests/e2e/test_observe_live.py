"""Observability end to end: the real gunicorn (two gevent workers, JSON logs at DEBUG), the fake
WeCom API, Prometheus' multiprocess metrics, and the console driven by real headless Chromium.

One service for the module; the tests run in file order and the last one stops it, checking
that the logs of the whole run are JSON and free of secrets and message content, and that the
metrics directory is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from app.devtools.fakewecom import FakeWeCom
from app.devtools.simulator import Simulator, requests_transport
from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.e2e.live import LiveService
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

ADMIN = "live-admin-token-0123456789abcdef"
SECRET = "observe-app-secret-4711"
#: A message text that must never reach a log line.
TEXT = "机密内容 Geheimnis 4711"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def fake():
    with FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=1000002) as server:
        yield server


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("observe")


@pytest.fixture(scope="module")
def broken(workdir) -> Path:
    flag = workdir / "broken"
    flag.touch()
    return flag


@pytest.fixture(scope="module")
def service(fake, workdir, broken):
    (workdir / "tmp").mkdir()
    env = {
        "WECOM_TOKEN": TOKEN,
        "WECOM_AES_KEY": AES_KEY,
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_SECRET": SECRET,
        "WECOM_AGENT_ID": "1000002",
        "WECOM_API_BASE": fake.base_url,
        "WECOM_STORE": f"sqlite:///{workdir / 'state.db'}",
        "WECOM_HANDLERS": "tests.handlers_console",
        "WECOM_REPLY_DEADLINE": "1",
        "WECOM_ADMIN_TOKEN": ADMIN,
        "WECOM_LOG_FORMAT": "json",
        "WECOM_LOG_LEVEL": "DEBUG",
        "WECOM_TEST_BROKEN": str(broken),
        "GUNICORN_ACCESSLOG": "-",
        "TMPDIR": str(workdir / "tmp"),  # where the master makes the metrics directory
    }
    with LiveService(env, workers=2) as live:
        yield live


@pytest.fixture(scope="module")
def wecom(service) -> Simulator:
    return Simulator(service.url + "/", TOKEN, AES_KEY, CORP_ID, transport=new_connection)


def new_connection(method: str, url: str, query: dict, body: bytes | None) -> tuple[int, bytes]:
    """One request on its own connection, so the workers share them as gunicorn hands them out."""
    with requests.Session() as session:
        return requests_transport(session=session)(method, url, query, body)


def scrape(service: LiveService) -> dict[tuple[str, tuple], float]:
    answer = requests.get(
        service.url + "/metrics", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=5
    )
    assert answer.status_code == 200, answer.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def total(samples: dict, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def log_lines(service: LiveService) -> list[dict]:
    return [json.loads(line) for line in service.output().splitlines() if line.strip()]


def callback_pids(service: LiveService) -> set[int]:
    return {line["pid"] for line in log_lines(service) if line.get("logger") == "app.callbacks"}


def test_metrics_are_summed_over_workers_and_survive_a_worker_restart(service, wecom, workdir):
    assert requests.get(service.url + "/metrics", timeout=5).status_code == 401
    before = total(scrape(service), "wecom_callbacks_total", outcome="passive")
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        for round_ in range(10):  # until both workers have answered some (bounded)
            batch = [str(100 + round_ * 10 + i) for i in range(10)]
            results = list(pool.map(lambda m: wecom.send_text(f"echo {m}", MsgId=m), batch))
            assert all(
                r.reply and r.reply["Content"] == f"echo {m}"
                for r, m in zip(results, batch, strict=True)
            )
            sent += len(batch)
            if len(callback_pids(service)) >= 2:
                break
    assert len(callback_pids(service)) == 2, "one worker answered everything"
    samples = scrape(service)
    assert total(samples, "wecom_callbacks_total", outcome="passive") == before + sent
    answered = total(samples, "wecom_callback_answer_seconds_count", endpoint="app")
    within = total(samples, "wecom_callback_answer_seconds_bucket", endpoint="app", le="5.0")
    assert answered >= sent and within == answered
    assert total(samples, "wecom_store_operation_seconds_count", operation="claim_job") >= sent
    metrics_dirs = list((workdir / "tmp").glob("wecom-metrics-*"))
    assert len(metrics_dirs) == 1 and list(metrics_dirs[0].glob("*.db"))

    victim = service.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(
        lambda: victim not in service.worker_pids() and len(service.worker_pids()) == 2, timeout=15
    )
    after = scrape(service)  # the dead worker's counts are still summed
    assert total(after, "wecom_callbacks_total", outcome="passive") == before + sent


# -- the console in a real browser -----------------------------------------------------------------
@pytest.fixture
def browser():
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("Chromium not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def click_and_load(driver, selector: str, within=None) -> None:
    """Click a submit button and wait until the page it leads to has replaced this one."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.wait import WebDriverWait

    page = driver.find_element("tag name", "html")
    (within or driver).find_element("css selector", selector).click()

    def replaced(_driver) -> bool:
        # Chromium reports the old page's node either as stale or, mid-navigation, as "does not
        # belong to the document": both mean the page was replaced.
        try:
            page.is_enabled()
        except WebDriverException:
            return True
        return False

    WebDriverWait(driver, 10, poll_frequency=0.05).until(replaced)


def text_of(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def reload_until(driver, url: str, check, timeout: float = 15.0):
    def attempt():
        driver.get(url)
        return check()

    return wait_for(attempt, timeout=timeout, interval=0.3)


def test_console_in_chromium(service, wecom, fake, broken, browser):
    console = service.url + "/console/"
    browser.get(console)
    assert browser.current_url.endswith("/console/login")
    browser.find_element("id", "token").send_keys("not-the-admin-token")
    click_and_load(browser, "form button[type=submit]")
    assert "Wrong token" in text_of(browser, "login-error")
    browser.find_element("id", "token").send_keys(ADMIN)
    click_and_load(browser, "form button[type=submit]")
    assert browser.current_url == console
    shown_before = int(text_of(browser, "total-callbacks"))

    # A burst of callbacks reaches the overview (every worker's counts, through the store).
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda i: wecom.send_text("burst", MsgId=str(3000 + i)), range(30)))
    reload_until(
        browser, console, lambda: int(text_of(browser, "total-callbacks")) >= shown_before + 30
    )
    assert int(text_of(browser, "outcome-passive")) >= 30
    assert browser.find_element("css selector", "svg.chart title").get_attribute("textContent")

    # A failing handler leaves a dead letter; fixed, it is resent through the fake WeCom API.
    assert wecom.send_text("flaky", MsgId="4001", FromUserName="fixme").body == b""
    reload_until(
        browser, service.url + "/console/dead", lambda: "app:msg:4001" in browser.page_source
    )
    row = browser.find_element("xpath", "//tr[.//code[text()='app:msg:4001']]")
    assert "handler raised RuntimeError" in row.text
    broken.unlink()
    click_and_load(browser, "button.resend", within=row)
    assert "/console/job?key=app" in browser.current_url
    job_page = browser.current_url
    reload_until(browser, job_page, lambda: text_of(browser, "job-state") == "done")
    sent = [s for s in fake.sent("message/send") if s["body"]["touser"] == "fixme"]
    assert [s["body"]["text"]["content"] for s in sent] == ["fixed now"]

    # A POST without the CSRF token is refused, and the session survives it.
    browser.get(console)
    browser.execute_script("document.querySelector('form.logout input[name=csrf]').remove()")
    click_and_load(browser, "form.logout button")
    assert "CSRF" in browser.find_element("tag name", "body").text
    browser.get(console)
    assert browser.current_url == console

    # Logging out ends the session.
    click_and_load(browser, "form.logout button")
    assert browser.current_url.endswith("/console/login")
    browser.get(console)
    assert browser.current_url.endswith("/console/login")


# -- last: the logs of the whole run -------------------------------------------------------------
def test_logs_are_json_and_free_of_secrets_and_content(service, wecom, fake, workdir):
    assert wecom.send_text(TEXT, MsgId="5001").reply["Content"] == TEXT  # passive
    late = wecom.send_text("sleep 1.5", MsgId="5002", FromUserName="late")  # deferred
    assert late.body == b""
    forged = Simulator(service.url + "/", "WrongToken1", AES_KEY, CORP_ID, transport=new_connection)
    assert forged.send_text(TEXT, MsgId="5003").status == 403
    # A kept-alive connection does not delay the stop (the graceful worker hangs up idle ones);
    # asking the server to close after each answer would race the next request on the pooled
    # connection against the server's FIN.
    with requests.Session() as session:
        form = session.get(service.url + "/console/login", timeout=5).text
        csrf = form.split('name="csrf" value="')[1].split('"')[0]
        login = session.post(
            service.url + "/console/login", data={"csrf": csrf, "token": ADMIN}, timeout=5
        )
    assert login.ok and "The last hour" in login.text
    wait_for(lambda: any(s["body"]["touser"] == "late" for s in fake.sent("message/send")), 10)
    scrape(service)
    tokens = {r["query"].get("access_token") for r in fake.requests("message/send")} - {None}
    service.stop()

    lines = log_lines(service)  # each line parses as one JSON object
    output = service.output()
    assert {"time", "pid", "level", "logger", "message"} <= set(lines[0])
    callbacks = [line for line in lines if line["logger"] == "app.callbacks"]
    by_id = {line["id"]: line for line in callbacks}
    assert by_id["MsgId=5001"]["outcome"] == "passive"
    assert by_id["MsgId=5002"]["outcome"] == "deferred"
    assert {"endpoint", "msgtype", "ms", "pid"} <= set(by_id["MsgId=5002"])
    assert any(line["outcome"] == "refused" for line in callbacks)
    assert any(line["logger"] == "gunicorn.access" and line.get("status") for line in lines)
    assert any("Booting worker" in line["message"] for line in lines)
    for secret in (TOKEN, AES_KEY, SECRET, ADMIN, TEXT, "Geheimnis", *tokens):
        assert secret not in output, f"{secret[:4]}… appears in the log"
    assert not list((workdir / "tmp").glob("wecom-metrics-*")), "metrics directory left behind"
