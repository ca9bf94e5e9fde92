"""The bot under the real gunicorn with gevent workers: one stream answered by two instances
(one worker each) sharing the SQLite store, and a restart of the stream's owner mid-stream."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.devtools.bot_simulator import BotSimulator
from app.devtools.fakellm import FakeLlm, answer_for
from app.jobs.streams import NOTE_INTERRUPTED
from tests.aibot.conftest import BOT_AES_KEY, BOT_TOKEN
from tests.e2e.live import LiveService
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

QUESTION = "#slow 讲个长故事"


def simulator(live: LiveService) -> BotSimulator:
    return BotSimulator(live.url + "/bot", BOT_TOKEN, BOT_AES_KEY)


def test_a_stream_across_instances_survives_its_owner(tmp_path) -> None:
    with FakeLlm(slow_delay=0.1) as model:
        env = {
            "WECOM_BOT_TOKEN": BOT_TOKEN,
            "WECOM_BOT_AES_KEY": BOT_AES_KEY,
            "WECOM_STORE": f"sqlite:///{tmp_path / 'state.db'}",
            "WECOM_LEASE_SECONDS": "1",
            "WECOM_LLM_BASE_URL": model.base_url,
            "WECOM_LLM_MODEL": "fake-1",
        }
        owner, other = LiveService(env, workers=1), LiveService(env, workers=1)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(LiveService.start, (owner, other)))
        restarted = LiveService(env, workers=1)
        try:
            first = simulator(owner).text(QUESTION)
            stream_id = first.stream["id"]
            frames: list[tuple[str, dict]] = []
            deadline = time.monotonic() + 10
            # WeCom's refreshes land on either instance; each sees what the other saw, and more.
            while time.monotonic() < deadline:
                for name, live in (("other", other), ("owner", owner)):
                    frames.append((name, simulator(live).refresh(stream_id).stream))
                grown = [frame for name, frame in frames if name == "other" and frame["content"]]
                if len(grown) >= 2 and grown[-1]["content"] != grown[0]["content"]:
                    break
                time.sleep(0.1)
            contents = [frame["content"] for _, frame in frames]
            assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(contents))
            assert not frames[-1][1]["finish"], frames[-1]
            assert contents[-1] and answer_for(QUESTION).startswith(contents[-1])
            assert {name for name, frame in frames if frame["content"]} == {"owner", "other"}

            owner.kill()  # the worker running the stream dies without a word
            restarted.start()
            final = wait_for(
                lambda: (
                    (frame := simulator(restarted).refresh(stream_id).stream)["finish"] and frame
                ),
                timeout=10,
            )
            assert final["content"].startswith(contents[-1])
            assert final["content"].endswith(NOTE_INTERRUPTED)
            assert simulator(other).refresh(stream_id).stream == final
        finally:
            for live in (owner, other, restarted):
                live.stop()
                live.log.close()
