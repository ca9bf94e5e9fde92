"""Screenshots of every console page, for the README: ``.venv/bin/python scripts/screenshots.py``.

Starts the fake WeCom API and the real service (gunicorn, two gevent workers, a fresh SQLite
store) on loopback ports, sends it some traffic (passive answers, late answers delivered through
the API, a retried callback, failing handlers, refused callbacks, a refused delivery, 微信客服
messages), logs in with headless Chromium (Debian's chromium + chromium-driver) and saves one PNG
per page under docs/screenshots/ (desktop width, plus the overview at phone width).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.devtools.fakewecom import FakeWeCom  # noqa: E402
from app.devtools.simulator import Simulator  # noqa: E402

TOKEN, CORP_ID = "ShotToken1", "wwshots000000001"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SECRET, KF_SECRET, AGENT_ID = "shots-app-secret", "shots-kf-secret", 1000002
ADMIN_TOKEN = "screenshots-admin-token-0001"
KF_ACCOUNT = "wkSHOTS0000001"
PAGES = ("overview", "dead", "pending", "kf", "endpoints", "recent")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_service(fake: FakeWeCom, state: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECOM_")}
    env.update(
        GUNICORN_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="2",
        GUNICORN_ACCESSLOG="",
        WECOM_TOKEN=TOKEN,
        WECOM_AES_KEY=AES_KEY,
        WECOM_CORP_ID=CORP_ID,
        WECOM_SECRET=SECRET,
        WECOM_AGENT_ID=str(AGENT_ID),
        WECOM_KF_TOKEN=TOKEN,
        WECOM_KF_AES_KEY=AES_KEY,
        WECOM_KF_SECRET=KF_SECRET,
        WECOM_API_BASE=fake.base_url,
        WECOM_STORE=f"sqlite:///{state}",
        WECOM_HANDLERS="tests.handlers_slow",
        WECOM_ADMIN_TOKEN=ADMIN_TOKEN,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(url + "/healthz", timeout=1).ok:
                return process, url
        except requests.RequestException:
            time.sleep(0.1)
    os.killpg(process.pid, signal.SIGTERM)
    raise SystemExit("the service did not start")


def traffic(url: str, fake: FakeWeCom) -> None:
    app = Simulator(url + "/", TOKEN, AES_KEY, CORP_ID)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: app.send_text(f"你好 {i}", MsgId=str(8_000 + i)), range(60)))
        late = [pool.submit(app.send_text, "sleep 5", MsgId=str(8_100 + i)) for i in range(3)]
        for index in range(2):
            pool.submit(app.send_text, "boom", MsgId=str(8_200 + index))
        fields = app.message_fields("text", Content="sleep 1", MsgId="8300")
        first = pool.submit(app.send_fields, fields)
        time.sleep(0.2)
        app.send_fields(fields)  # WeCom's retry of the same message
        first.result()
        for future in late:
            future.result()
    time.sleep(1.5)  # the three late answers reach message/send before the fault below
    wrong = Simulator(url + "/", "WrongToken", AES_KEY, CORP_ID)
    for index in range(2):
        wrong.send_text("x", MsgId=str(8_400 + index))
    fake.fault("message/send", "errcode", errcode=81013)
    app.send_text("sleep 4.5", MsgId="8500", FromUserName="nobody")
    queued = fake.enqueue_kf(
        open_kfid=KF_ACCOUNT,
        messages=[{"external_userid": f"wmSHOT{i:02d}", "text": "在吗"} for i in range(4)],
    )
    Simulator(url + "/kf", TOKEN, AES_KEY, CORP_ID).send_kf_callback(queued["token"], KF_ACCOUNT)
    time.sleep(3)  # the late answers reach message/send, the console's minute records fill


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,900")
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def shoot(driver, path: Path, width: int) -> None:
    driver.set_window_size(width, 900)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(int(height) + 40, 600), 4000))
    driver.save_screenshot(str(path))
    print(path.relative_to(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeWeCom(
            corp_id=CORP_ID,
            secret=SECRET,
            agent_id=AGENT_ID,
            kf_secret=KF_SECRET,
            kf_accounts=[KF_ACCOUNT],
        ) as fake,
    ):
        process, url = start_service(fake, Path(tmp) / "state.db")
        driver = None
        try:
            traffic(url, fake)
            driver = browser()
            driver.get(url + "/console/login")
            shoot(driver, args.out / "login.png", 1280)
            driver.find_element("id", "token").send_keys(ADMIN_TOKEN)
            driver.find_element("css selector", "form button[type=submit]").click()
            for page in PAGES:
                driver.get(f"{url}/console/{'' if page == 'overview' else page}")
                shoot(driver, args.out / f"{page}.png", 1280)
            driver.get(url + "/console/")
            shoot(driver, args.out / "overview-phone.png", 390)
        finally:
            if driver is not None:
                driver.quit()
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
