"""Deleting what a test declared on the shared RabbitMQ, so runs leave nothing behind."""

from __future__ import annotations

import aio_pika

from tidings.queue.rabbitmq import RabbitQueue


async def delete_declared(url: str, *queues: RabbitQueue) -> None:
    """Delete every queue and the delay exchange these RabbitQueues (closed or not) declared."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for name in sorted(set().union(*(queue.queue_names for queue in queues))):
            # Quorum queues refuse the if-unused / if-empty checks.
            await channel.queue_delete(name, if_unused=False, if_empty=False)
        for exchange in {queue.delay_exchange for queue in queues}:
            await channel.exchange_delete(exchange)
