"""微信客服 end to end in one process: the doorbell callback through the test client, the pull,
the handlers and the answers, against the fake WeCom API over loopback."""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time

import pytest

from app.infra.store import JobState
from app.jobs import kf_puller, kf_sync
from app.jobs.kf_answers import job_key
from app.jobs.kf_puller import ACCOUNTS_KEY, ACCOUNTS_LOCK, cursor_key, lock_name, wake_key
from app.jobs.lanes import Lanes
from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.helpers import wait_for
from tests.kf import handlers_kf
from tests.kf.conftest import APP_SECRET, KF_A, KF_B
from tests.settled import settled


@pytest.fixture
def service(app):
    return app.extensions["wecom"]


def state_of(service, key: str) -> JobState | None:
    job = service.store.get_job(key)
    return job.state if job else None


def test_doorbell_is_answered_empty_and_the_demo_answers(customers):
    customers.write(
        KF_A,
        {"external_userid": "wm1", "text": "你好"},
        {"external_userid": "wm1", "text": "在吗"},
        {"external_userid": "wm2", "msgtype": "image", "image": {"media_id": "MEDIA"}},
    )
    wait_for(lambda: len(customers.answers()) == 3)
    assert customers.texts("wm1") == ["你好,这是测试机器人", "在吗"]
    assert customers.texts("wm2") == ["收到图片"]
    sent = customers.answers("wm1")[0]
    assert sent["open_kfid"] == KF_A
    assert sent["body"]["msgid"].startswith("wcb_") and len(sent["body"]["msgid"]) == 32


def test_cursor_is_persisted_and_nothing_is_answered_twice(customers, service, fake):
    customers.write(KF_A, {"external_userid": "wm1", "text": "one"})
    wait_for(lambda: customers.texts() == ["one"])
    cursor = wait_for(lambda: service.store.get_value(cursor_key(KF_A), time.time()))
    wait_for(lambda: service.store.get_value(wake_key(KF_A), time.time()) is None)
    customers.write(KF_A, {"external_userid": "wm1", "text": "two"})
    wait_for(lambda: customers.texts() == ["one", "two"])
    syncs = [r["body"] for r in fake.requests("kf/sync_msg")]
    assert "cursor" not in syncs[0]
    assert syncs[1]["cursor"] == cursor
    assert all(body["open_kfid"] == KF_A and body["token"] for body in syncs)
    wait_for(lambda: settled(service.store, [KF_A]))
    assert customers.texts() == ["one", "two"]


def test_pages_are_followed_while_has_more_also_over_empty_pages(customers, service, fake):
    service.engine.puller.sync.page_limit = 2
    fake.fault("kf/sync_msg", "empty_page")
    customers.write(KF_A, *({"external_userid": "wm1", "text": f"m{i}"} for i in range(5)))
    wait_for(lambda: len(customers.answers()) == 5)
    assert customers.texts() == [f"m{i}" for i in range(5)]
    pages = fake.requests("kf/sync_msg")
    assert pages[0]["fault"] == "empty_page"
    assert len(pages) == 4  # the empty page, then 2 + 2 + 1


def test_first_start_answers_only_recent_history(app_config, customers_of):
    customers = customers_of(app_config | {"WECOM_KF_HISTORY_SECONDS": 60})
    now = int(time.time())
    customers.write(
        KF_A,
        {"external_userid": "wm1", "text": "yesterday", "send_time": now - 86400},
        {"external_userid": "wm1", "text": "an hour ago", "send_time": now - 3600},
        {"external_userid": "wm1", "text": "just now", "send_time": now - 5},
    )
    wait_for(lambda: customers.texts() == ["just now"])
    # Once a cursor exists, an old message is still answered (the service was down a while).
    customers.write(KF_A, {"external_userid": "wm1", "text": "late", "send_time": now - 3600})
    wait_for(lambda: customers.texts() == ["just now", "late"])


def test_servicer_messages_and_events_get_no_demo_answer(customers, service):
    customers.write(
        KF_A,
        {"external_userid": "wm1", "origin": 5, "servicer_userid": "zhangsan", "text": "人工回复"},
        {"external_userid": "wm1", "event": "servicer_status_change", "status": 1},
        {"external_userid": "wm1", "text": "客户"},
    )
    wait_for(lambda: customers.texts() == ["客户"])
    wait_for(lambda: settled(service.store, [KF_A]))
    assert customers.texts() == ["客户"]  # the servicer's message and the event got no answer


class TestWithHandlers:
    """The test handler module (tests/kf/handlers_kf.py) instead of the demo."""

    @pytest.fixture
    def app_config(self, app_config):
        handlers_kf.RUNS.clear()
        handlers_kf.EVENTS.clear()
        return app_config | {
            "WECOM_KF_HANDLERS": "tests.kf.handlers_kf",
            "WECOM_KF_WELCOME": "欢迎",
        }

    def test_servicer_messages_never_reach_a_handler(self, customers):
        queued = customers.write(
            KF_A,
            {"external_userid": "wm1", "origin": 5, "servicer_userid": "zhangsan", "text": "人工"},
            {"external_userid": "wm1", "text": "客户"},
        )
        wait_for(lambda: customers.texts() == ["客户"])
        servicer, customer = queued["msgids"]
        assert handlers_kf.RUNS[customer] == 1
        assert servicer not in handlers_kf.RUNS

    def test_events_reach_event_handlers(self, customers):
        customers.write(
            KF_A,
            {"external_userid": "wm1", "text": "hi"},
            {"external_userid": "wm1", "event": "user_recall_msg", "recall_msgid": "X"},
            {
                "event": {
                    "event_type": "servicer_status_change",
                    "servicer_userid": "z",
                    "status": 2,
                }
            },
        )
        wait_for(lambda: customers.texts() == ["hi", "你撤回了一条消息"])
        wait_for(lambda: handlers_kf.EVENTS)
        # The recall matched its own rule first; the other event reached the catch-all one.
        assert [e["event"]["event_type"] for e in handlers_kf.EVENTS] == ["servicer_status_change"]

    def test_welcome_goes_with_the_welcome_code_and_first(self, customers, fake, gates):
        customers.write(
            KF_A,
            {"external_userid": "wm1", "text": "hold w1"},
            {"external_userid": "wm2", "event": "enter_session", "scene": "ad"},
            {"external_userid": "wm2", "text": "hello"},
        )
        wait_for(lambda: len(customers.answers()) == 2)  # wm1's handler still holds
        gates.open("w1")
        wait_for(lambda: len(customers.answers()) == 3)
        welcome, *rest = customers.answers()
        assert welcome["api"] == "kf/send_msg_on_event"
        assert (welcome["touser"], welcome["code_kind"]) == ("wm2", "welcome")
        assert welcome["body"]["text"]["content"] == "欢迎"
        assert [a["body"]["text"]["content"] for a in rest] == ["hello", "released w1"]

    def test_doorbell_is_answered_before_the_handlers_finish(self, customers, gates):
        ringing = threading.Thread(
            target=customers.write, args=(KF_A, {"external_userid": "wm1", "text": "hold d1"})
        )
        ringing.start()
        ringing.join(10)  # a doorbell waiting for the handler would wait for the gate
        assert not ringing.is_alive()
        assert customers.answers() == []
        gates.open("d1")
        wait_for(lambda: customers.texts() == ["released d1"])

    def test_enter_session_without_a_welcome_code_gets_no_welcome(self, customers, service):
        customers.write(
            KF_A,
            {"external_userid": "wm1", "event": "enter_session", "welcome_code": False},
            {"external_userid": "wm1", "text": "hi"},
        )
        wait_for(lambda: customers.texts() == ["hi"])
        wait_for(lambda: settled(service.store, [KF_A]))
        assert [a["api"] for a in customers.answers()] == ["kf/send_msg"]

    def test_one_customer_in_order_while_others_go_ahead(self, customers, gates):
        customers.write(
            KF_A,
            {"external_userid": "slow", "text": "hold o1"},
            {"external_userid": "slow", "text": "after"},
            {"external_userid": "fast", "text": "quick"},
        )
        wait_for(lambda: customers.texts() == ["quick"])  # while slow's first one holds
        assert handlers_kf.RUNS and len(customers.answers()) == 1
        gates.open("o1")
        wait_for(lambda: len(customers.answers()) == 3)
        assert customers.texts() == ["quick", "released o1", "after"]

    def test_order_holds_across_callbacks_and_pages(self, customers, service, gates):
        service.engine.puller.sync.page_limit = 1
        queued = [customers.write(KF_A, {"external_userid": "wm1", "text": "hold p1"})]
        queued.append(customers.write(KF_A, {"external_userid": "wm1", "text": "second"}))
        queued.append(customers.write(KF_A, {"external_userid": "wm1", "text": "third"}))
        keys = [job_key(KF_A, q["msgids"][0]) for q in queued]
        # All three are pulled (claimed) while the first still holds: the others wait for it.
        wait_for(lambda: all(service.store.get_job(key) for key in keys))
        assert customers.answers() == []
        gates.open("p1")
        wait_for(lambda: len(customers.answers()) == 3)
        assert customers.texts() == ["released p1", "second", "third"]

    def test_menu_and_its_click(self, customers):
        customers.write(KF_A, {"external_userid": "wm1", "text": "menu"})
        wait_for(lambda: len(customers.answers()) == 1)
        menu = customers.answers()[0]["body"]
        assert menu["msgtype"] == "msgmenu"
        assert menu["msgmenu"]["list"][0] == {
            "type": "click",
            "click": {"id": "yes", "content": "满意"},
        }
        customers.write(
            KF_A, {"external_userid": "wm1", "text": {"content": "满意", "menu_id": "yes"}}
        )
        wait_for(lambda: len(customers.answers()) == 2)
        assert customers.texts()[-1] == "谢谢好评"

    def test_several_messages_get_their_own_msgids(self, customers):
        customers.write(KF_A, {"external_userid": "wm1", "text": "two"})
        wait_for(lambda: len(customers.answers()) == 2)
        assert customers.texts() == ["first", "second"]
        first, second = (a["body"]["msgid"] for a in customers.answers())
        assert first != second

    def test_failing_handler_is_recorded_dead(self, customers, service):
        queued = customers.write(KF_A, {"external_userid": "wm1", "text": "boom"})
        key = job_key(KF_A, queued["msgids"][0])
        job = wait_for(lambda: (j := service.store.get_job(key)) and j.state == JobState.DEAD and j)
        assert "handler bug" in job.last_error
        assert customers.answers() == []

    def test_a_handler_raising_system_exit_is_recorded_dead_and_the_lane_goes_on(
        self, customers, service
    ):
        queued = customers.write(
            KF_A,
            {"external_userid": "wm1", "text": "exit"},
            {"external_userid": "wm1", "text": "menu"},
        )
        key = job_key(KF_A, queued["msgids"][0])
        job = wait_for(lambda: (j := service.store.get_job(key)) and j.state == JobState.DEAD and j)
        assert job.last_error == "handler raised SystemExit: a handler called sys.exit()"
        wait_for(lambda: customers.texts() == ["msgmenu"])  # the customer's next message

    def test_msg_send_fail_is_logged(self, customers, caplog):
        caplog.set_level(logging.WARNING, "app.jobs.kf_sync")
        event = {"event_type": "msg_send_fail", "external_userid": "wm1", "fail_msgid": "M1"}
        customers.write(KF_A, {"event": {**event, "fail_type": 6}})
        wait_for(lambda: handlers_kf.EVENTS)
        assert "fail_type 6 (over the 5-message limit)" in caplog.text
        assert "M1" in caplog.text


def test_burst_of_callbacks_causes_one_catching_up_pull(customers, service, fake):
    fake.fault("kf/sync_msg", "delay", seconds=0.5)  # the first pull is slow
    first = customers.write(KF_A, {"external_userid": "wm0", "text": "m0"})
    wait_for(lambda: fake.requests("kf/sync_msg"))  # it has begun
    tokens = [first["token"]]
    for i in range(1, 20):
        tokens.append(
            customers.write(KF_A, {"external_userid": f"wm{i}", "text": f"m{i}"}, ring=False)[
                "token"
            ]
        )

    threads = [threading.Thread(target=customers.ring, args=(t, KF_A)) for t in tokens[1:]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    wait_for(lambda: len(customers.answers()) == 20)
    wait_for(lambda: settled(service.store, [KF_A]))
    assert len(customers.answers()) == 20
    pulls = fake.requests("kf/sync_msg")
    assert len(pulls) == 2  # the slow first one, then one that caught up with 19 callbacks


def test_pulls_for_two_accounts_run_side_by_side(customers, fake):
    fake.fault("kf/sync_msg", "delay", seconds=0.5, count=2)
    customers.write(KF_A, {"external_userid": "wm1", "text": "a"})
    customers.write(KF_B, {"external_userid": "wm2", "text": "b"})

    def in_flight() -> int:
        return sum(1 for r in fake.requests("kf/sync_msg") if r["status"] is None)

    # Both slow pulls (one per account) are at the fake at once: not one after the other.
    wait_for(lambda: in_flight() == 2)
    wait_for(lambda: len(customers.answers()) == 2)
    assert sorted(a["open_kfid"] for a in customers.answers()) == [KF_A, KF_B]


def test_expired_sync_token_pulls_without_it(customers, fake):
    queued = customers.write(KF_A, {"external_userid": "wm1", "text": "late"}, ring=False)
    fake.advance(601)  # the callback Token lives 10 minutes
    customers.ring(queued["token"], KF_A)
    wait_for(lambda: customers.texts() == ["late"])
    first, second = fake.requests("kf/sync_msg")
    assert (first["errcode"], second["errcode"]) == (95007, 0)
    assert "token" in first["body"] and "token" not in second["body"]


def test_a_refused_cursor_starts_over_within_the_history_window(customers, service, fake):
    service.store.set_value(cursor_key(KF_A), "%%%")  # not a cursor the fake ever gave out
    customers.write(KF_A, {"external_userid": "wm1", "text": "recent"})
    wait_for(lambda: customers.texts() == ["recent"])
    first, second = fake.requests("kf/sync_msg")
    assert (first["body"]["cursor"], first["errcode"]) == ("%%%", 50100)
    assert "cursor" not in second["body"] and second["errcode"] == 0
    wait_for(lambda: service.store.get_value(cursor_key(KF_A), time.time()) not in (None, "%%%"))


def test_a_long_backlog_continues_in_the_next_round(customers, service, fake, monkeypatch, caplog):
    caplog.set_level(logging.INFO, "app.jobs.kf_sync")
    monkeypatch.setattr(kf_sync, "MAX_PAGES", 2)
    service.engine.puller.sync.page_limit = 1
    customers.write(KF_A, *({"external_userid": "wm1", "text": f"m{i}"} for i in range(3)))
    wait_for(lambda: customers.texts() == ["m0", "m1", "m2"])
    assert "continues after 2 pages" in caplog.text
    cursors = [r["body"].get("cursor") for r in fake.requests("kf/sync_msg")]
    assert len(cursors) == 3 and cursors[0] is None
    assert cursors[2] not in (None, cursors[1])  # the second round went on from the stored cursor


def test_rate_limited_sync_and_send_are_retried(customers, fake):
    fake.fault("kf/sync_msg", "errcode", errcode=45009)
    fake.fault("kf/send_msg", "errcode", errcode=45009)
    fake.fault("kf/send_msg", "errcode", errcode=-1)
    customers.write(KF_A, {"external_userid": "wm1", "text": "hi"})
    wait_for(lambda: customers.texts() == ["hi"], timeout=15)
    assert [r["errcode"] for r in fake.requests("kf/send_msg")] == [45009, -1, 0]
    assert [r["errcode"] for r in fake.requests("kf/sync_msg")] == [45009, 0]


def test_sync_failure_backs_off_and_the_sweep_resumes(customers, service, fake):
    fake.fault("kf/sync_msg", "errcode", errcode=-1, count=4)  # beyond the client's retries
    customers.write(KF_A, {"external_userid": "wm1", "text": "eventually"})
    wait_for(lambda: customers.texts() == ["eventually"], timeout=15)
    assert service.store.get_value(wake_key(KF_A), time.time()) is None


@pytest.mark.parametrize(
    ("errcode", "session_state"), [(95001, None), (95002, None), (95013, 4), (95018, 3)]
)
def test_refused_send_is_logged_with_its_errcode_and_not_retried(
    customers, service, fake, caplog, errcode, session_state
):
    caplog.set_level(logging.ERROR, "app.jobs.outbox")
    queued = customers.write(KF_A, {"external_userid": "wm1", "text": "q"}, ring=False)
    if session_state is None:
        fake.fault("kf/send_msg", "errcode", errcode=errcode)
    else:
        fake.set_session(KF_A, "wm1", session_state)
    customers.ring(queued["token"], KF_A)
    key = job_key(KF_A, queued["msgids"][0])
    job = wait_for(lambda: (j := service.store.get_job(key)) and j.state == JobState.DEAD and j)
    assert f"errcode {errcode}" in job.last_error
    assert f"errcode {errcode}" in caplog.text and "not retried" in caplog.text
    wait_for(lambda: settled(service.store, [KF_A]))
    assert len(fake.requests("kf/send_msg")) == 1
    assert customers.answers() == []
    assert "maybe_sent" not in job.reply  # WeCom said no: a re-send may try the same msgid


def test_lost_answer_is_not_delivered_twice(customers, service, fake):
    fake.fault("kf/send_msg", "drop_after")  # WeCom takes the message, the answer is lost
    queued = customers.write(KF_A, {"external_userid": "wm1", "text": "once"})
    key = job_key(KF_A, queued["msgids"][0])
    wait_for(lambda: state_of(service, key) == JobState.DONE)
    assert customers.texts() == ["once"]
    tries = fake.requests("kf/send_msg")
    # Taken and the answer dropped, then refused as a repeat.
    assert [(t["fault"], t["errcode"]) for t in tries] == [("drop_after", 0), (None, 40058)]
    assert tries[0]["body"]["msgid"] == tries[1]["body"]["msgid"]


def test_a_repeat_refusal_on_a_first_try_is_a_real_error(customers, service, fake):
    fake.fault("kf/send_msg", "errcode", errcode=40058)
    queued = customers.write(KF_A, {"external_userid": "wm1", "text": "x"})
    key = job_key(KF_A, queued["msgids"][0])
    job = wait_for(lambda: (j := service.store.get_job(key)) and j.state == JobState.DEAD and j)
    assert "40058" in job.last_error


def test_send_that_crashed_after_wecom_took_it_is_not_repeated(customers, service, fake):
    """A worker died after WeCom accepted the message but before it recorded that: the job is in
    the outbox with its message marked; recovery's re-send is refused and counts as delivered."""
    queued = customers.write(KF_A, {"external_userid": "wm1", "text": "hi"})
    key = job_key(KF_A, queued["msgids"][0])
    wait_for(lambda: state_of(service, key) == JobState.DONE)
    sent = customers.answers()[0]["body"]
    entry = {
        "to": "wm1",
        "open_kfid": KF_A,
        "messages": [
            {
                "msgid": sent["msgid"],
                "msgtype": "text",
                "text": {"content": "hi"},
                "maybe_sent": True,
            }
        ],
    }
    service.store.update_job(
        key,
        expect_states=(JobState.DONE,),
        state=JobState.OUTBOX,
        owner="dead-worker",
        lease_until=time.time() - 1,
        reply=json.dumps(entry),
        now=time.time(),
    )
    wait_for(lambda: state_of(service, key) == JobState.DONE)
    assert len(customers.answers()) == 1
    assert [r["errcode"] for r in fake.requests("kf/send_msg")] == [0, 40058]


def test_crash_before_the_cursor_moved_repeats_the_batch_without_double_answers(
    customers, service, fake
):
    """A puller claimed a message, then died before storing the cursor: the next pull reads the
    batch again, skips the claimed message (recovery answers it) and answers the rest."""
    queued = customers.write(
        KF_A,
        {"external_userid": "wm1", "text": "claimed"},
        {"external_userid": "wm2", "text": "new"},
        ring=False,
    )
    claimed = queued["msgids"][0]
    item = {
        "msgid": claimed,
        "open_kfid": KF_A,
        "external_userid": "wm1",
        "send_time": int(time.time()),
        "origin": 3,
        "msgtype": "text",
        "text": {"content": "claimed"},
    }
    payload = {"endpoint": "kf", "open_kfid": KF_A, "message": item}
    service.store.claim_job(
        job_key(KF_A, claimed),
        "kf",
        json.dumps(payload),
        "dead-worker",
        time.time() + 0.5,
        time.time(),
    )
    customers.ring(queued["token"], KF_A)
    wait_for(lambda: len(customers.answers()) == 2)
    wait_for(lambda: settled(service.store, [KF_A]))  # the dead worker's lease ran out too
    assert sorted(customers.texts()) == ["claimed", "new"]
    assert len(fake.requests("kf/send_msg")) == 2


def test_doorbell_on_the_app_endpoint_is_pulled_with_the_app_secret(fake, customers_of):
    app_keys = {"WECOM_TOKEN": TOKEN, "WECOM_AES_KEY": AES_KEY, "WECOM_CORP_ID": CORP_ID}
    customers = customers_of(
        app_keys
        | {
            "TESTING": True,
            "WECOM_SECRET": APP_SECRET,
            "WECOM_AGENT_ID": "1000002",
            "WECOM_API_BASE": fake.base_url,
            "WECOM_STORE": "memory://",
        },
        path="/",
    )
    customers.write(KF_A, {"external_userid": "wm1", "text": "你好"})
    wait_for(lambda: customers.texts() == ["你好,这是测试机器人"])
    # The app's own messages still get their passive replies.
    assert customers.simulator.send_text("你好").reply["Content"] == "你好,这是测试机器人"


def test_kf_endpoint_without_a_secret_pulls_nothing_and_says_why(
    app_config, fake, customers_of, caplog
):
    caplog.set_level(logging.WARNING)
    customers = customers_of({k: v for k, v in app_config.items() if k != "WECOM_KF_SECRET"})
    customers.write(KF_A, {"external_userid": "wm1", "text": "hi"})
    wait_for(lambda: "cannot be pulled" in caplog.text)
    assert "WECOM_KF_SECRET or WECOM_SECRET" in caplog.text
    assert fake.requests("kf/sync_msg") == []


def test_one_pull_per_account_across_workers(app_config, fake, customers_of, tmp_path):
    """Two services on one SQLite store, as two gunicorn workers: their pulls of one account
    never overlap, and every message is answered once."""
    config = app_config | {"WECOM_STORE": f"sqlite:///{tmp_path / 'shared.db'}"}
    workers = [customers_of(config), customers_of(config)]
    fake.fault("kf/sync_msg", "delay", seconds=0.3, count=20)
    for turn in range(3):
        before = len(fake.requests("kf/sync_msg"))
        for index, worker in enumerate(workers):
            worker.write(KF_A, {"external_userid": f"wm{index}", "text": f"{index}-{turn}"})
        # A pull for this turn began (callbacks during a pull fold into the next one).
        wait_for(lambda b=before: len(fake.requests("kf/sync_msg")) > b)
    wait_for(lambda: len(workers[0].answers()) == 6)
    wait_for(lambda: workers[0].settled() and workers[1].settled())
    assert workers[0].texts("wm0") == ["0-0", "0-1", "0-2"]
    assert workers[0].texts("wm1") == ["1-0", "1-1", "1-2"]
    arrivals = [r["wall_time"] for r in fake.requests("kf/sync_msg")]
    assert all(later - earlier >= 0.29 for earlier, later in itertools.pairwise(arrivals))
    assert len(arrivals) < 6  # callbacks during a pull were folded into the next one


def test_lock_of_a_dead_puller_expires_and_the_sweep_resumes(customers, service, fake):
    now = time.time()
    expires = now + 1.0
    service.store.acquire_lock(f"kf:pull:{KF_A}", "dead-worker", expires, now)
    customers.write(KF_A, {"external_userid": "wm1", "text": "still here"})
    wait_for(lambda: customers.texts() == ["still here"], timeout=5)
    # Nobody pulled while the dead worker's lock held.
    assert min(r["wall_time"] for r in fake.requests("kf/sync_msg")) >= expires


def test_a_welcome_code_too_old_to_use_is_not_sent(app_config, customers_of, caplog):
    caplog.set_level(logging.WARNING, "app.jobs.kf_answers")
    customers = customers_of(app_config | {"WECOM_KF_WELCOME": "欢迎"})
    now = int(time.time())
    customers.write(
        KF_A,
        {"external_userid": "wm1", "event": "enter_session", "send_time": now - 30},
        {"external_userid": "wm2", "event": "enter_session", "send_time": now - 2},
    )
    wait_for(lambda: len(customers.answers()) == 1)
    wait_for(customers.settled)
    assert [a["touser"] for a in customers.answers()] == ["wm2"]
    assert "no welcome sent" in caplog.text


def test_lost_answer_to_a_welcome_is_not_sent_again(app_config, fake, customers_of, caplog):
    caplog.set_level(logging.WARNING, "app.jobs.kf_answers")
    customers = customers_of(app_config | {"WECOM_KF_WELCOME": "欢迎"})
    fake.fault("kf/send_msg_on_event", "drop_after")  # the code is used, the answer lost
    customers.write(KF_A, {"external_userid": "wm1", "event": "enter_session"})
    wait_for(lambda: len(fake.requests("kf/send_msg_on_event")) == 2)
    wait_for(customers.settled)
    assert len(fake.sent("kf/send_msg_on_event")) == 1
    # Used, then refused as a used code: counted as delivered, not dead-lettered.
    assert [r["errcode"] for r in fake.requests("kf/send_msg_on_event")] == [0, 41050]
    wait_for(lambda: "as a repeat (errcode 41050)" in caplog.text)


def test_a_puller_that_lost_its_lock_cannot_move_the_cursor_back(customers, service, fake):
    """The old holder's renew succeeds just before its lock expires; a new holder then takes the
    lock and moves the cursor on. The old holder's cursor write must not land."""
    customers.write(KF_A, {"external_userid": "wm1", "text": "one"})
    wait_for(lambda: customers.texts() == ["one"])
    wait_for(lambda: service.store.get_value(wake_key(KF_A), time.time()) is None)
    wait_for(
        lambda: service.store.acquire_lock(lock_name(KF_A), "old", time.time() + 30, time.time())
    )
    queued = customers.write(KF_A, {"external_userid": "wm1", "text": "two"}, ring=False)

    def renew_then_lose() -> bool:
        now = time.time()
        assert service.store.acquire_lock(lock_name(KF_A), "old", now, now)  # runs out at once
        later = time.time()  # a new holder takes the lock and moves the cursor on
        assert service.store.acquire_lock(lock_name(KF_A), "new", later + 30, later)
        assert service.store.set_value_if_locked(
            cursor_key(KF_A), "c-new", lock_name(KF_A), "new", later
        )
        return True  # the old holder believes it still holds the lock

    wake = json.dumps({"endpoint": "kf", "token": queued["token"]})
    lanes = Lanes(2, "test-lost-cursor")
    outcome = service.engine.puller.sync.run(KF_A, wake, lanes, renew_then_lose, "old")
    assert outcome is kf_sync.Outcome.LOST
    assert service.store.get_value(cursor_key(KF_A), time.time()) == "c-new"
    wait_for(lambda: customers.texts() == ["one", "two"])  # the page's message was still taken
    service.store.release_lock(lock_name(KF_A), "new")


class _Interloper:
    """The store, except that while the account list is being read, the reader's lock runs out
    and another writer adds its own account (a slow store, a paused worker)."""

    def __init__(self, store) -> None:
        self._store = store
        self.struck = False

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def get_value(self, key: str, now: float):
        value = self._store.get_value(key, now)
        if key == ACCOUNTS_KEY and not self.struck:
            self.struck = True
            later = time.time() + 10  # past the reader's 5 s lock
            assert self._store.acquire_lock(ACCOUNTS_LOCK, "other", later + 5, later)
            accounts = [*json.loads(value or "[]"), "wkOTHER"]
            assert self._store.set_value_if_locked(
                ACCOUNTS_KEY, json.dumps(accounts), ACCOUNTS_LOCK, "other", later
            )
            assert self._store.release_lock(ACCOUNTS_LOCK, "other")
        return value


def test_an_account_list_writer_whose_lock_ran_out_loses_no_account(service, monkeypatch):
    puller = service.engine.puller
    interloper = _Interloper(service.store)
    monkeypatch.setattr(puller, "store", interloper)
    puller._remember("wkNEW")
    assert interloper.struck
    stored = json.loads(service.store.get_value(ACCOUNTS_KEY, time.time()))
    assert {"wkOTHER", "wkNEW"} <= set(stored)


def test_an_account_missing_from_the_list_is_written_again_at_its_next_doorbell(customers, service):
    customers.write(KF_A, {"external_userid": "wm1", "text": "one"})
    wait_for(lambda: customers.texts() == ["one"])
    service.store.set_value(ACCOUNTS_KEY, json.dumps(["wkOTHER"]))  # KF_A lost from the list
    service.engine.puller.sweep()  # each sweep re-reads the list
    customers.write(KF_A, {"external_userid": "wm1", "text": "two"})
    wait_for(lambda: customers.texts() == ["one", "two"])
    stored = json.loads(service.store.get_value(ACCOUNTS_KEY, time.time()))
    assert set(stored) == {"wkOTHER", KF_A}


def test_a_session_past_its_time_keeps_the_lock_until_its_lanes_are_idle(
    app_config, customers_of, gates, monkeypatch, caplog
):
    """Released while a customer's message is still being answered, the lock would let another
    worker start that customer's next message first."""
    caplog.set_level(logging.INFO, logger="app.jobs.kf_puller")
    handlers_kf.RUNS.clear()
    customers = customers_of(app_config | {"WECOM_KF_HANDLERS": "tests.kf.handlers_kf"})
    store = customers.store
    customers.write(KF_A, {"external_userid": "wm1", "text": "hold s1"})
    wait_for(lambda: handlers_kf.RUNS)  # pulled, and its handler holds at the gate
    monkeypatch.setattr(kf_puller, "SESSION_SECONDS", 0.0)  # now the session is over
    wait_for(lambda: "keeps the lock until its 1 messages are answered" in caplog.text)
    now = time.time()
    assert not store.acquire_lock(lock_name(KF_A), "other", now + 30, now)  # still held
    gates.open("s1")
    wait_for(lambda: customers.texts() == ["released s1"])
    wait_for(lambda: store.acquire_lock(lock_name(KF_A), "other", time.time() + 1, time.time()))
    store.release_lock(lock_name(KF_A), "other")
