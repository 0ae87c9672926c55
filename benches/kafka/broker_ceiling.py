"""What the broker and the Kafka client allow on the machine it runs on, with no work per message: consume the
benchmark's topic in batches of 1000 with confluent-kafka (librdkafka, like autoenc) and either drop the
messages (`--mode consume`), or produce each one unchanged to the output topic with an idempotent producer,
either flushing and committing synchronously per batch (`--mode forward`: the reference consumer's loop,
one batch at a time, with parsing and scoring taken out) or without waiting (`--mode stream`: commit
asynchronously per batch, flush once at the end — how fast the broker and librdkafka can move the
messages through when nothing waits for a round trip).
Run by benches/kafka/broker_ceiling.sh on a fresh tansu broker after the shared setup and produce phases."""
import argparse
import json
import time

from confluent_kafka import Consumer, KafkaError, Producer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("-n", type=int, default=200_000)
    ap.add_argument("--mode", choices=["consume", "forward", "stream"], required=True)
    ap.add_argument("--group", default="ceiling")
    a = ap.parse_args()
    c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": f"{a.group}-{a.mode}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    p = (
        Producer({"bootstrap.servers": a.bootstrap, "linger.ms": 5, "enable.idempotence": True,
                  "queue.buffering.max.messages": 1_000_000})
        if a.mode != "consume"
        else None
    )
    errors = [0]

    def delivered(err, _msg):
        if err is not None:
            errors[0] += 1

    c.subscribe(["in"])
    seen, first, last = 0, None, None
    deadline = time.monotonic() + 300
    while seen < a.n and time.monotonic() < deadline:
        msgs = c.consume(num_messages=1000, timeout=0.1)
        good = [m for m in msgs if m.error() is None or m.error().code() != KafkaError._PARTITION_EOF]
        if not good:
            continue
        first = first or time.perf_counter()
        if p is not None:
            for m in good:
                while True:
                    try:
                        p.produce("out", key=m.key(), value=m.value(), on_delivery=delivered)
                        break
                    except BufferError:
                        p.poll(0.05)
            if a.mode == "forward":
                if p.flush(30) or errors[0]:
                    raise RuntimeError(f"output not delivered ({errors[0]} errors)")
                c.commit(asynchronous=False)
            else:
                p.poll(0)
                c.commit(asynchronous=True)
        seen += len(good)
        last = time.perf_counter()
    if p is not None and (p.flush(60) or errors[0]):
        raise RuntimeError(f"output not delivered ({errors[0]} errors)")
    last = time.perf_counter() if p is not None else last
    c.close()
    print(json.dumps({"mode": a.mode, "messages": seen, "msgs_per_s": round(seen / (last - first)) if first else None}))


if __name__ == "__main__":
    main()
