"""Demo data for the autoenc stream pipeline in docker-compose.yml.

Two modes, sharing one synthetic plant (so the model trained on the first scores the second):

  python producer.py write-training --out /data/train.csv --rows 20000
      A clean CSV of sensor readings (columns sensor_00..sensor_31, no anomalies) for `autoenc train`.

  python producer.py produce --bootstrap kafka:9092 --topic sensors --rate 200
      Endless JSON messages {"id", "ts", "sensor_00", ..., "sensor_31"} at a steady rate, with about 1 % of
      rows made anomalous (a spike on one sensor, a sensor stuck at a constant for a while, or a sensor
      following the wrong factor). Each message is keyed by its id; an injected anomaly also carries the
      header `x-injected: <kind>` (headers are kept by the pipeline, so the scored topic shows which flags
      were true positives). A few malformed messages (every --bad-every-th; 0 = none) show the dead-letter
      topic at work.

The plant: every sensor reads a fixed random mix of three hidden factors (two slow oscillations and a
random walk) plus small noise, around its own offset - so normal rows lie near a 3-dimensional manifold,
which is what the autoencoder learns. The factor loadings come from --seed, which both modes must share.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import signal
import sys
import time
import uuid
from datetime import datetime, timezone

import numpy as np

FACTORS = 3


class Plant:
    """The synthetic sensors: `step()` gives the next clean row."""

    def __init__(self, sensors: int, seed: int, start: int = 0) -> None:
        structure = np.random.default_rng(seed)
        self.loadings = structure.standard_normal((FACTORS, sensors))
        self.offsets = 10.0 * np.arange(sensors, dtype=np.float64)
        # The noise stream differs between the training file and the live stream (seed + start).
        self.rng = np.random.default_rng([seed, start])
        self.t = start
        self.walk = 0.0
        self.sensors = sensors

    def hidden(self) -> np.ndarray:
        return np.array([math.sin(self.t / 50.0), 1.5 * math.cos(self.t / 170.0), self.walk])

    def step(self) -> tuple[np.ndarray, np.ndarray]:
        """The next clean row and the hidden factors that produced it."""
        self.walk = 0.995 * self.walk + 0.1 * self.rng.standard_normal()
        hidden = self.hidden()
        row = self.offsets + hidden @ self.loadings + 0.05 * self.rng.standard_normal(self.sensors)
        self.t += 1
        return row, hidden


def names(sensors: int) -> list[str]:
    return [f"sensor_{j:02d}" for j in range(sensors)]


def write_training(args: argparse.Namespace) -> None:
    plant = Plant(args.sensors, args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    partial = args.out + ".partial"
    with open(partial, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names(args.sensors))
        for _ in range(args.rows):
            row, _ = plant.step()
            writer.writerow([f"{v:.5f}" for v in row])
    # Atomic: the trainer never sees a half-written file.
    os.replace(partial, args.out)
    print(f"wrote {args.rows} clean rows of {args.sensors} sensors to {args.out}", flush=True)


class Injector:
    """Turns about `rate` of the rows into anomalies. A stuck sensor stays stuck for a run of rows,
    so its onsets are rarer to keep the share of anomalous rows near `rate`."""

    STUCK_RUN = 20

    def __init__(self, plant: Plant, rate: float, seed: int) -> None:
        self.plant = plant
        self.rng = np.random.default_rng([seed, 1])
        # Each kind accounts for a third of the anomalous rows: a stuck onset covers STUCK_RUN rows, so it
        # is STUCK_RUN times rarer than a spike or a broken correlation.
        weights = np.array([1.0, 1.0 / self.STUCK_RUN, 1.0])
        self.kinds = ["spike", "stuck", "correlation"]
        self.kind_p = weights / weights.sum()
        rows_per_onset = float(self.kind_p @ np.array([1.0, self.STUCK_RUN, 1.0]))
        self.onset_rate = rate / rows_per_onset
        self.stuck_sensor = -1
        self.stuck_value = 0.0
        self.stuck_left = 0

    def apply(self, row: np.ndarray, hidden: np.ndarray) -> str | None:
        if self.stuck_left > 0:
            self.stuck_left -= 1
            row[self.stuck_sensor] = self.stuck_value
            return "stuck"
        if self.rng.random() >= self.onset_rate:
            return None
        j = int(self.rng.integers(self.plant.sensors))
        kind = self.kinds[int(self.rng.choice(len(self.kinds), p=self.kind_p))]
        if kind == "spike":
            sign = 1.0 if self.rng.random() < 0.5 else -1.0
            row[j] += sign * 4.0 * (1.0 + self.rng.random())
        elif kind == "stuck":
            # The sensor freezes away from where it should be for the next STUCK_RUN rows.
            self.stuck_sensor, self.stuck_value = j, float(self.plant.offsets[j] + 3.0)
            self.stuck_left = self.STUCK_RUN - 1
            row[j] = self.stuck_value
        else:
            wrong = np.roll(hidden, -1) @ self.plant.loadings[:, j]
            row[j] = self.plant.offsets[j] + 2.0 * wrong + 1.5
        return kind


def produce(args: argparse.Namespace) -> None:
    from confluent_kafka import KafkaException, Producer

    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "client.id": "autoenc-demo-producer",
            "enable.idempotence": True,
            "linger.ms": 5,
            "compression.type": "lz4",
        }
    )
    # Continue the plant's clock after the training rows, like a live feed after the history.
    plant = Plant(args.sensors, args.seed, start=args.train_rows)
    injector = Injector(plant, args.anomaly_rate, args.seed)
    columns = names(args.sensors)

    stopping = False

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    failures = 0

    def on_delivery(err, _msg):
        nonlocal failures
        if err is not None:
            failures += 1
            print(f"delivery failed: {err}", file=sys.stderr, flush=True)

    interval = 1.0 / args.rate
    next_send = time.monotonic()
    sent = anomalies = bad = 0
    last_report = time.monotonic()
    while not stopping and (args.count == 0 or sent < args.count):
        row, hidden = plant.step()
        kind = injector.apply(row, hidden)
        key = str(uuid.uuid4())
        record = {"id": key, "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}
        record.update({name: round(float(v), 5) for name, v in zip(columns, row)})
        headers = None
        if kind is not None:
            anomalies += 1
            headers = [("x-injected", kind.encode())]
        value = json.dumps(record).encode()
        if args.bad_every and sent > 0 and sent % args.bad_every == 0:
            # Malformed on purpose: not JSON at all. The pipeline sends it to the dead-letter topic.
            value, headers, bad = b"{not json", [("x-injected", b"malformed")], bad + 1
        while True:
            try:
                producer.produce(args.topic, value=value, key=key.encode(), headers=headers, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
            except KafkaException as e:
                print(f"produce failed: {e}", file=sys.stderr, flush=True)
                time.sleep(1.0)
        producer.poll(0)
        sent += 1
        now = time.monotonic()
        if now - last_report >= 10.0:
            print(f"sent {sent} messages ({anomalies} anomalous rows, {bad} malformed, {failures} failed)", flush=True)
            last_report = now
        next_send += interval
        delay = next_send - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -1.0:
            next_send = time.monotonic()  # fell behind by more than a second: do not burst to catch up
    remaining = producer.flush(30)
    print(f"stopped after {sent} messages ({anomalies} anomalous rows, {bad} malformed, {failures} failed, {remaining} unflushed)", flush=True)
    sys.exit(0 if remaining == 0 and failures == 0 else 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sensors", type=int, default=int(os.environ.get("SENSORS", 32)))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SEED", 7)))
    parser.add_argument("--train-rows", type=int, default=int(os.environ.get("TRAIN_ROWS", 20000)))
    commands = parser.add_subparsers(dest="command", required=True)

    training = commands.add_parser("write-training", help="write the clean training CSV and exit")
    training.add_argument("--out", default=os.environ.get("TRAIN_PATH", "/data/train.csv"))
    training.add_argument("--rows", type=int, default=None, help="rows to write (default: --train-rows)")

    live = commands.add_parser("produce", help="produce JSON sensor messages to Kafka")
    live.add_argument("--bootstrap", default=os.environ.get("BOOTSTRAP_SERVERS", "kafka:9092"))
    live.add_argument("--topic", default=os.environ.get("TOPIC", "sensors"))
    live.add_argument("--rate", type=float, default=float(os.environ.get("RATE", 200)), help="messages per second")
    live.add_argument("--anomaly-rate", type=float, default=float(os.environ.get("ANOMALY_RATE", 0.01)))
    live.add_argument("--bad-every", type=int, default=int(os.environ.get("BAD_EVERY", 5000)))
    live.add_argument("--count", type=int, default=int(os.environ.get("COUNT", 0)), help="stop after N (0 = never)")

    args = parser.parse_args()
    if args.command == "write-training":
        if args.rows is None:
            args.rows = args.train_rows
        write_training(args)
    else:
        if args.rate <= 0:
            parser.error("--rate must be positive")
        produce(args)


if __name__ == "__main__":
    main()
