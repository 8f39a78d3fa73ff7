"""A real ONVIF camera for tests: ipycam 1.3.0, repaired, with a PullPoint Events service.

Run by :mod:`tests.peers.onvif` inside a private network namespace, because ipycam binds
every interface (HTTP/ONVIF, RTSP and UDP 3702) with no option to change that::

    python onvif_camera.py --port P --rtsp-port R [--user U --password W]
                           [--clock-offset SECONDS] [--no-ptz]

It prints ``READY`` once it serves, then reads commands on stdin, one per line:
``event motion|tamper|input true|false`` queues a notification for every PullPoint
subscription. SIGTERM stops it.

What is repaired here (the product must work with real cameras, not with ipycam's bugs):

* PTZ replies use the ``ptz:``/``tptz:`` prefixes without declaring them, so
  GetConfigurations, GetStatus and GetPresets do not parse: the envelope declares them.
* GetStatus leaves ``{{pan_tilt_status}}``, ``{{zoom_status}}`` and ``{{utc_time}}`` in the
  reply: they are filled in.
* The WS-Discovery reply uses the action ``.../ProbeMatch`` and lacks the
  ``<d:ProbeMatches>`` wrapper that the WS-Discovery schema requires.
* GetSystemDateAndTime demands WS-Security, though ONVIF Core puts it in the PRE_AUTH
  class: a client must be able to read the clock before it can sign anything with it.

What is added: ipycam has no Events service. This fixture serves the PullPoint operations
(CreatePullPointSubscription, PullMessages, Renew, Unsubscribe) itself, building every reply
with zeep from the ONVIF ``events.wsdl`` that onvif-zeep-async ships, so the replies have the
shapes the WSDL defines; the service is advertised in GetServices and GetCapabilities.

``--clock-offset`` runs the camera's clock that many seconds ahead (its GetSystemDateAndTime
and its WS-Security freshness check), as a camera without NTP would. ``--no-ptz`` removes
the PTZ service and the profiles' PTZ configuration, as on a fixed bullet camera.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onvif
import zeep
from ipycam import CameraConfig, IPCamera
from ipycam import onvif as ipycam_onvif
from lxml import etree

EVENTS_NS = "http://www.onvif.org/ver10/events/wsdl"
TT = "{http://www.onvif.org/ver10/schema}"
TOPIC_DIALECT = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
# What real cameras send for these alarms: topic, the source item, the data item.
TOPICS = {
    "motion": (
        "tns1:RuleEngine/CellMotionDetector/Motion",
        "VideoSourceConfigurationToken",
        "IsMotion",
    ),
    "tamper": (
        "tns1:RuleEngine/TamperDetector/Tamper",
        "VideoSourceConfigurationToken",
        "IsTamper",
    ),
    "input": ("tns1:Device/Trigger/DigitalInput", "InputToken", "LogicalState"),
}
PTZ_NS = "http://www.onvif.org/ver20/ptz/wsdl"


def shift_clock(offset: float) -> None:
    """Run ipycam's ONVIF clock ``offset`` seconds ahead of the host's."""
    real_datetime = dt.datetime

    class ShiftedDatetime(real_datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
            return real_datetime.now(tz) + dt.timedelta(seconds=offset)

    ipycam_onvif.time = SimpleNamespace(  # type: ignore[assignment]
        gmtime=lambda: time.gmtime(time.time() + offset), time=time.time
    )
    ipycam_onvif.datetime = ShiftedDatetime  # type: ignore[misc]


def repair_templates(cam: IPCamera, events_url: str, *, ptz: bool) -> None:
    templates = cam.onvif._templates
    templates["envelope"] = templates["envelope"].replace(
        'xmlns:trt="http://www.onvif.org/ver10/media/wsdl"',
        'xmlns:trt="http://www.onvif.org/ver10/media/wsdl" '
        f'xmlns:ptz="{PTZ_NS}" xmlns:tptz="{PTZ_NS}"',
    )
    templates["ptz_get_status"] = (
        templates["ptz_get_status"]
        .replace("{{pan_tilt_status}}", "{{move_status}}")
        .replace("{{zoom_status}}", "{{move_status}}")
    )
    original_status = cam.onvif.ptz_get_status

    def ptz_get_status(body: str) -> str:
        utc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return original_status(body).replace("{{utc_time}}", utc)

    cam.onvif.ptz_get_status = ptz_get_status  # type: ignore[method-assign]
    probe = templates["probe_match"].replace("discovery/ProbeMatch<", "discovery/ProbeMatches<")
    probe = probe.replace("<d:ProbeMatch>", "<d:ProbeMatches><d:ProbeMatch>")
    templates["probe_match"] = probe.replace("</d:ProbeMatch>", "</d:ProbeMatch></d:ProbeMatches>")

    events_service = (
        f"<tds:Service><tds:Namespace>{EVENTS_NS}</tds:Namespace>"
        f"<tds:XAddr>{events_url}</tds:XAddr>"
        "<tds:Version><tt:Major>2</tt:Major><tt:Minor>5</tt:Minor></tds:Version></tds:Service>"
    )
    services = templates["get_services"].replace(
        "</tds:GetServicesResponse>", events_service + "</tds:GetServicesResponse>"
    )
    events_capability = (
        f"<tt:Events><tt:XAddr>{events_url}</tt:XAddr>"
        "<tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport>"
        "<tt:WSPullPointSupport>true</tt:WSPullPointSupport>"
        "<tt:WSPausableSubscriptionManagerInterfaceSupport>false"
        "</tt:WSPausableSubscriptionManagerInterfaceSupport></tt:Events>"
    )
    capabilities = templates["get_capabilities"].replace(
        "</tt:Device>", "</tt:Device>" + events_capability
    )
    if not ptz:
        services = re.sub(
            rf"<tds:Service>\s*<tds:Namespace>{PTZ_NS}</tds:Namespace>.*?</tds:Service>",
            "",
            services,
            flags=re.DOTALL,
        )
        capabilities = re.sub(r"<tt:PTZ>.*?</tt:PTZ>", "", capabilities, flags=re.DOTALL)
        templates["get_profiles"] = re.sub(
            r"<tt:PTZConfiguration\b.*?</tt:PTZConfiguration>",
            "",
            templates["get_profiles"],
            flags=re.DOTALL,
        )
    templates["get_services"] = services
    templates["get_capabilities"] = capabilities


class Subscription:
    def __init__(self, terminates: float) -> None:
        self.terminates = terminates
        self.messages: list[Any] = []


class EventsService:
    """The PullPoint operations, with replies serialised by zeep from ``events.wsdl``."""

    def __init__(self, base_url: str) -> None:
        wsdl = Path(onvif.__file__).parent / "wsdl" / "events.wsdl"
        self.client = zeep.Client(str(wsdl))
        bindings = self.client.wsdl.bindings
        self.event_ops = bindings[f"{{{EVENTS_NS}}}EventBinding"]
        self.pull_ops = bindings[f"{{{EVENTS_NS}}}PullPointSubscriptionBinding"]
        self.manager_ops = bindings[f"{{{EVENTS_NS}}}SubscriptionManagerBinding"]
        self.message_element = self.client.get_element(TT + "Message")
        self.base_url = base_url
        self.subscriptions: dict[str, Subscription] = {}
        self.changed = threading.Condition()

    def publish(self, kind: str, active: bool) -> None:
        topic, source_name, data_name = TOPICS[kind]
        source = "DI_1" if kind == "input" else "VSC_1"
        value = self.message_element(
            UtcTime=dt.datetime.now(dt.UTC),
            PropertyOperation="Changed",
            Source={"SimpleItem": [{"Name": source_name, "Value": source}]},
            Data={"SimpleItem": [{"Name": data_name, "Value": str(active).lower()}]},
        )
        message = {
            "Topic": {"Dialect": TOPIC_DIALECT, "_value_1": topic},
            "Message": {"_value_1": zeep.xsd.AnyObject(self.message_element, value)},
        }
        with self.changed:
            for subscription in self.subscriptions.values():
                subscription.messages.append(message)
            self.changed.notify_all()

    def handle(self, body: str) -> str | None:
        """The reply to an Events request, or None for any other request."""
        envelope = etree.fromstring(body.encode())
        request = envelope.find("{*}Body/*")
        if request is None or etree.QName(request).namespace not in (
            EVENTS_NS,
            "http://docs.oasis-open.org/wsn/b-2",
        ):
            return None
        operation = etree.QName(request).localname
        to = envelope.findtext("{*}Header/{http://www.w3.org/2005/08/addressing}To") or ""
        subscription_id = to.rsplit("/", 1)[-1]
        if operation == "CreatePullPointSubscription":
            return self._create(request)
        if operation == "GetEventProperties":
            return None  # not needed: answered by ipycam's "not supported" fault
        with self.changed:
            subscription = self.subscriptions.get(subscription_id)
            if subscription is None or subscription.terminates < time.time():
                self.subscriptions.pop(subscription_id, None)
                return fault("the subscription does not exist (expired or device restarted)")
        if operation == "PullMessages":
            return self._pull(subscription, request)
        if operation == "Renew":
            subscription.terminates = time.time() + _seconds(request, 60)
            return self._reply(
                self.manager_ops,
                "Renew",
                TerminationTime=_utc(subscription.terminates),
                CurrentTime=_utc(time.time()),
            )
        if operation == "Unsubscribe":
            with self.changed:
                self.subscriptions.pop(subscription_id, None)
            return self._reply(self.manager_ops, "Unsubscribe")
        return fault(f"operation {operation} is not supported by this fixture")

    def _create(self, request: Any) -> str:
        subscription_id = uuid.uuid4().hex
        terminates = time.time() + _seconds(request, 60)
        with self.changed:
            self.subscriptions[subscription_id] = Subscription(terminates)
        return self._reply(
            self.event_ops,
            "CreatePullPointSubscription",
            SubscriptionReference={"Address": f"{self.base_url}/subscription/{subscription_id}"},
            CurrentTime=_utc(time.time()),
            TerminationTime=_utc(terminates),
        )

    def _pull(self, subscription: Subscription, request: Any) -> str:
        limit = int(request.findtext("{*}MessageLimit") or 10)
        deadline = time.monotonic() + min(_seconds(request, 5, tag="Timeout"), 10)
        with self.changed:
            self.changed.wait_for(
                lambda: subscription.messages or time.monotonic() >= deadline,
                timeout=max(0.0, deadline - time.monotonic()),
            )
            messages = subscription.messages[:limit]
            del subscription.messages[:limit]
        return self._reply(
            self.pull_ops,
            "PullMessages",
            CurrentTime=_utc(time.time()),
            TerminationTime=_utc(subscription.terminates),
            NotificationMessage=messages,
        )

    @staticmethod
    def _reply(binding: Any, operation: str, **values: Any) -> str:
        message = binding.get(operation).output.serialize(**values)
        return etree.tostring(message.content, xml_declaration=True, encoding="UTF-8").decode()


def fault(reason: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault>'
        "<s:Code><s:Value>s:Receiver</s:Value></s:Code>"
        f'<s:Reason><s:Text xml:lang="en">{reason}</s:Text></s:Reason>'
        "</s:Fault></s:Body></s:Envelope>"
    )


def _utc(epoch: float) -> dt.datetime:
    # Seconds resolution, as cameras send it; the camera's own (possibly shifted) clock.
    return ipycam_onvif.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(
        seconds=round(epoch - time.time())
    )


def _seconds(request: Any, default: float, tag: str = "InitialTerminationTime") -> float:
    """An xs:duration such as ``PT60S`` from the request (Renew calls it TerminationTime)."""
    text = request.findtext(f"{{*}}{tag}") or request.findtext("{*}TerminationTime") or ""
    match = re.fullmatch(r"PT(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?", text.strip())
    if not match or not any(match.groups()):
        return default
    return int(match[1] or 0) * 60 + float(match[2] or 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rtsp-port", type=int, required=True)
    parser.add_argument("--user", default="")
    parser.add_argument("--password", default="")
    parser.add_argument("--clock-offset", type=float, default=0.0)
    parser.add_argument("--no-ptz", action="store_true")
    parser.add_argument("--fps", type=int, default=10)
    args = parser.parse_args()

    if args.clock_offset:
        shift_clock(args.clock_offset)
    config = CameraConfig(
        name="SimCam",
        manufacturer="PythonCam",
        model="VirtualCam-1",
        serial_number="PY-4711",
        local_ip="127.0.0.1",
        onvif_port=args.port,
        rtsp_port=args.rtsp_port,
        username=args.user,
        password=args.password,
        main_width=640,
        main_height=360,
        main_fps=args.fps,
        main_bitrate="600K",
        sub_width=320,
        sub_height=180,
        sub_fps=args.fps,
        sub_bitrate="200K",
        hw_accel="cpu",
    )
    cam = IPCamera(config)
    events_url = f"http://127.0.0.1:{args.port}/onvif/events_service"
    repair_templates(cam, events_url, ptz=not args.no_ptz)
    events = EventsService(events_url)

    handle_action = cam.onvif.handle_action

    def handle(action: str, body: str) -> str | None:
        return events.handle(body) or handle_action(action, body)

    cam.onvif.handle_action = handle  # type: ignore[method-assign]
    verify = cam.onvif.verify_usernametoken
    cam.onvif.verify_usernametoken = (  # type: ignore[method-assign]
        lambda body: "GetSystemDateAndTime" in body or verify(body)
    )

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def commands() -> None:
        for line in sys.stdin:
            words = line.split()
            if len(words) == 3 and words[0] == "event":
                events.publish(words[1], words[2] == "true")
                print("PUBLISHED", words[1], flush=True)

    if not cam.start():
        sys.exit("ipycam did not start")
    threading.Thread(target=commands, daemon=True).start()
    print("READY", flush=True)
    frame = np.zeros((360, 640, 3), np.uint8)
    n = 0
    while not stop.is_set():
        frame[:] = (60, 40, 20)
        x = (n * 8) % 640
        frame[:, x : x + 16] = (40, 200, 240)
        cam.stream(frame)  # paces itself to the configured fps
        n += 1
    cam.stop()


if __name__ == "__main__":
    main()
