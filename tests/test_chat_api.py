"""Issue 13 from outside: ``GET``/``POST /chat`` on a running site (JSON and server-sent events),
the real ChatOpenAI client streaming from a fake OpenAI-compatible server on loopback (tool
calls included), an unreachable model endpoint as one line, and ``facility-agent chat``."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from agent_harness import Hall
from conftest import free_port
from site_harness import Running, running_site
from test_agent_api import run_cli
from test_agent_llm import FakeOpenAI, fake_openai

from agent.chat.conversation import Chats
from agent.commands import chat as chat_cmd
from agent.context import AgentContext
from agent.llm import chat_model_from_env
from agent.users import Principal, Role
from connectors.store import Store

GPU_CAP = "gpu.power_cap"


def events(r: httpx.Response) -> list[tuple[str, str]]:
    return list(chat_cmd.sse_events(r.iter_lines()))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("chat")

    def build(hall: Hall) -> AgentContext:
        return AgentContext.build(
            hall.site,
            hall.store,
            hall.writer,
            hall.clock,
            policies=[],
            checkpoint_path=tmp / "site.duckdb.ckpt.sqlite",
        )

    with running_site(tmp / "site.duckdb", build) as r:
        yield r


def test_post_chat_commands_json_and_sse_share_the_conversation(site: Running) -> None:
    with site.client() as anon:
        assert anon.get("/chat").status_code == 401
        assert anon.post("/chat", json={"message": "status"}).status_code == 401
    with site.client("viewer") as v:
        assert v.get("/chat").json() == {"mode": "commands", "model": None}
        r = v.post("/chat", json={"message": "status"})
        assert r.status_code == 403 and "operator" in r.json()["detail"]
    with site.client("operator") as o:
        r = o.post("/chat", json={"message": "propose gpu.power_cap = 95", "by": "root"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert {"text", "conversation", "proposals", "mode"} <= set(body)
        assert body["mode"] == "commands"
        conv = body["conversation"]
        (prop,) = body["proposals"]
        assert (prop["tag"], prop["from"], prop["to"]) == (GPU_CAP, 100.0, 95.0)
        assert prop["outcome"] == "approval_requested" and prop["decision_id"].startswith("dec")
        # the next message of the conversation, streamed: tokens, then the same JSON
        msg = {"message": "approve that", "conversation": conv}
        with o.stream("POST", "/chat", json=msg, headers={"Accept": "text/event-stream"}) as s:
            assert s.status_code == 200
            assert s.headers["content-type"].startswith("text/event-stream")
            evs = events(s)
        kinds = [e for e, _ in evs]
        assert kinds[-1] == "done" and set(kinds[:-1]) == {"token"}, kinds
        done = json.loads(evs[-1][1])
        assert done["conversation"] == conv and done["mode"] == "commands"
        assert "".join(d for e, d in evs if e == "token") == done["text"]
        assert prop["approval_id"] in done["text"] and "yes or no" in done["text"]
        yes = o.post("/chat", json={"message": "yes", "conversation": conv}).json()
        assert f"Approved {prop['approval_id']} as olga" in yes["text"], yes
        r = o.post("/chat", json={"message": "hi", "conversation": "../etc"})
        assert r.status_code == 422 and "conversation" in r.json()["detail"]
    a = site.do(lambda: site.ctx.audit.approval(prop["approval_id"]))
    assert a is not None and a.state == "approved" and a.by_whom == "olga"  # not "root"
    assert site.hall.twin.values()[GPU_CAP] == 95.0


def test_cli_chat_goes_through_the_running_site_as_the_token_user(
    site: Running, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    db = str(site.db)
    monkeypatch.setattr(chat_cmd, "HISTORY_FILE", site.db.parent / "history")
    monkeypatch.setenv("FACILITY_AGENT_TOKEN", site.tokens["viewer"])
    code, _ = run_cli("chat", "status", "--db", db)
    err = capsys.readouterr().err
    assert code == 3 and "needs the operator role" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("FACILITY_AGENT_TOKEN", site.tokens["operator"])
    site.do(lambda: site.hall.run(120))  # past the point's shortest write interval
    code, out = run_cli("chat", "propose gpu.power_cap = 90", "--db", db)
    assert code == 0 and "approval_requested" in out, out
    said = re.search(r"mode commands; conversation (conv-[0-9a-f]+)", out)
    assert said is not None, out
    monkeypatch.setattr("sys.stdin", io.StringIO("approve that\nyes\n"))
    code, out = run_cli("chat", "--conversation", said.group(1), "--db", db)
    assert code == 0 and f"site process at {site.url}" in out and "mode: commands" in out
    assert "Answer yes or no" in out and "as olga" in out, out
    assert site.hall.twin.values()[GPU_CAP] == 90.0, out


class _ToolThenAnswer(FakeOpenAI):
    requests: ClassVar[list[dict[str, Any]]] = []
    call = ("call_7", "latest_values", json.dumps({"tags": ["gpu.gpu_temp_max"]}))
    answer = "The hottest GPU is at 71 C, inside its limit."


def test_llm_over_http_streams_tokens_calls_tools_and_remembers(tmp_path: Path) -> None:
    with fake_openai(_ToolThenAnswer) as env:

        def build(hall: Hall) -> AgentContext:
            return AgentContext.build(
                hall.site,
                hall.store,
                hall.writer,
                hall.clock,
                policies=[],
                approvals="record",
                checkpoint_path=tmp_path / "l.ckpt.sqlite",
                llm=chat_model_from_env(env),
            )

        with running_site(tmp_path / "l.duckdb", build, warm_s=120) as s:
            with s.client("viewer") as v:
                assert v.get("/chat").json() == {"mode": "llm", "model": "tiny-model"}
            with s.client("operator") as o:
                msg = {"message": "How hot are the GPUs?", "conversation": None}
                with o.stream(
                    "POST", "/chat", json=msg, headers={"Accept": "text/event-stream"}
                ) as r:
                    assert r.status_code == 200
                    evs = events(r)
                done = json.loads(evs[-1][1])
                tokens = [d for e, d in evs if e == "token"]
                assert len(tokens) >= 5  # streamed word by word from the server
                assert "".join(tokens) == done["text"] == _ToolThenAnswer.answer
                assert done["mode"] == "llm" and done["refused"] == []
                first = _ToolThenAnswer.requests[0]
                assert first["stream"] is True and first["model"] == "tiny-model"
                tool = [m for m in _ToolThenAnswer.requests[1]["messages"] if m["role"] == "tool"]
                assert (
                    tool[0]["tool_call_id"] == "call_7" and "gpu.gpu_temp_max" in tool[0]["content"]
                )
                # a second message of the same conversation: the model is shown the first
                n = len(_ToolThenAnswer.requests)
                again = o.post(
                    "/chat", json={"message": "And now?", "conversation": done["conversation"]}
                ).json()
                assert again["conversation"] == done["conversation"]
                sent = _ToolThenAnswer.requests[n]["messages"]
                assert [m["content"] for m in sent if m["role"] == "user"] == [
                    "How hot are the GPUs?",
                    "And now?",
                ]
                assert any(
                    m["role"] == "assistant" and m.get("content") == _ToolThenAnswer.answer
                    for m in sent
                )
                assert any(m["role"] == "tool" for m in sent)  # the first turn's tool answer
            runs = s.do(
                lambda: s.ctx.store.query(
                    "SELECT status, tokens_in FROM runs_latest WHERE trigger = 'chat'"
                )
            )
            assert list(runs["status"]) == ["done", "done"]


def test_an_unreachable_model_is_one_line_not_a_traceback(
    tmp_path: Path, agent_on: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import asyncio

    dead = {"OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1", "OPENAI_API_KEY": "x"}

    async def main() -> None:
        hall = Hall(tmp_path / "d.duckdb")
        hall.run(60)
        ctx = agent_on(hall, policies=[], approvals="record", llm=chat_model_from_env(dead))
        chats = Chats(ctx)
        r = await chats.turn("hello", "c1", Principal("olga", Role.OPERATOR))
        assert r.error and len(r.text.splitlines()) == 1, r.text
        assert dead["OPENAI_BASE_URL"] in r.text and "say help" in r.text
        run = ctx.store.query("SELECT status FROM runs_latest WHERE run_id = ?", [r.run_id])
        assert run["status"][0] == "llm_error"
        ok = await chats.turn("approve that", "c1", Principal("olga", Role.OPERATOR))
        assert "no proposal in this conversation" in ok.text  # commands still answer

    asyncio.run(main())

    for k, v in dead.items():
        monkeypatch.setenv(k, v)
    Store(tmp_path / "cli.duckdb").close()  # a site's file (a missing one is refused)
    code, out = run_cli("chat", "hello", "--db", str(tmp_path / "cli.duckdb"))
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in out + err and len(err.strip().splitlines()) == 1
    assert err.startswith("facility-agent: error: language model at http://127.0.0.1:"), err
    assert "Connection error (plain commands still work" in err


def test_cli_interactive_session_without_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(chat_cmd, "HISTORY_FILE", tmp_path / "history")
    db = tmp_path / "i.duckdb"
    Store(db).close()  # a site's file (a missing one is refused)
    lines = "help\n\npropose gpu.power_cap = 90\napprove that\nno\npending\nexit\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    code, out = run_cli("chat", "--db", str(db))
    assert code == 0, out
    assert "mode: commands" in out and "plain commands" in out
    assert "what if TAG +1" in out  # help
    # the file holds no readings: the proposal is judged (and blocked) on data quality
    assert "proposals" in out and "blocked" in out and "data quality" in out
    assert "No proposal of this conversation awaits an answer" in out
    assert "Nothing to confirm." in out and "No approval is pending." in out
    assert (tmp_path / "history").is_file()  # readline's history, kept between sessions
    said = re.search(r"conversation (conv-[0-9a-f]+) \(continue it", out.strip().splitlines()[-1])
    assert said is not None, out
    conv = said.group(1)
    # one-shot, continuing that conversation: one more turn in the same checkpointed history
    code, out = run_cli("chat", "status", "--conversation", conv, "--db", str(db))
    assert code == 0 and "autonomy ceiling" in out and f"conversation {conv}" in out

    async def history() -> list[Any]:
        from agent.checkpoint import close_saver, open_saver
        from agent.commands._agent import checkpoint_path

        saver = await open_saver(checkpoint_path(db))
        try:
            cfg: Any = {"configurable": {"thread_id": f"chat:{conv}"}}
            tup = await saver.aget_tuple(cfg)
            assert tup is not None
            return list(tup.checkpoint["channel_values"]["messages"])
        finally:
            await close_saver(saver)

    import asyncio

    msgs = asyncio.run(history())
    assert [m.content for m in msgs][::2] == [
        "help",
        "propose gpu.power_cap = 90",
        "approve that",
        "no",
        "pending",
        "status",
    ]
