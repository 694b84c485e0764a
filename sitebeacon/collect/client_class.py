"""A coarse client class from the User-Agent: browser family + major version, OS family, device.

ua-parser (with its maintained rules, `ua-parser-builtins`, and the native `ua-parser-rs`
matcher when installed) does the parsing; a new User-Agent costs ~0.1 ms, so answers are
cached per string (a site sees few) and the collect path pays a dict lookup. Only these
coarse classes are stored, never the User-Agent.
"""

from __future__ import annotations

from typing import NamedTuple

CACHE_SIZE = 8192


class ClientClass(NamedTuple):
    browser: str | None
    os: str | None
    device: str | None


UNKNOWN = ClientClass(None, None, None)

_TABLET_WORDS = ("ipad", "tablet", "kindle", "silk/", "playbook", "sm-t", "nexus 7", "nexus 9")


def _device(agent: str, device_family: str, bot: bool) -> str:
    """mobile / tablet / desktop (ua-parser names devices, not classes: this is the usual rule)."""
    if bot or device_family == "Spider":
        return "bot"
    lowered = agent.lower()
    if any(word in lowered for word in _TABLET_WORDS):
        return "tablet"
    if "android" in lowered and "mobile" not in lowered:
        return "tablet"  # Android tablets leave "Mobile" out (Google's own guidance)
    if "mobi" in lowered or "iphone" in lowered or "ipod" in lowered or "phone" in lowered:
        return "mobile"
    return "desktop"


class ClientClassifier:
    """`classify(user_agent, bot)`, cached per User-Agent (bounded: cleared when full)."""

    def __init__(self) -> None:
        from ua_parser import parse  # imported here: a receiver with it turned off never loads it

        self._parse = parse
        self._cache: dict[tuple[str, bool], ClientClass] = {}

    def __call__(self, user_agent: str | None, bot: bool) -> ClientClass:
        if not user_agent:
            return ClientClass(None, None, "bot")
        key = (user_agent, bot)
        found = self._cache.get(key)
        if found is None:
            found = self._classify(user_agent, bot)
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _classify(self, user_agent: str, bot: bool) -> ClientClass:
        try:
            result = self._parse(user_agent)
        except Exception:  # a parser bug must not reach the request path
            return UNKNOWN
        browser = None
        if result.user_agent is not None and result.user_agent.family != "Other":
            agent = result.user_agent
            browser = f"{agent.family} {agent.major}" if agent.major else agent.family
        os = None
        if result.os is not None and result.os.family != "Other":
            os = result.os.family
        family = result.device.family if result.device is not None else "Other"
        return ClientClass(
            browser and browser[:64], os and os[:64], _device(user_agent, family, bot)
        )
