"""Keepalive settings of clients and servers agree: a server that gets pings more often than
it allows answers GOAWAY too_many_pings, killing long idle streams (route watches)."""
from switchyard.common.grpc_server import CHANNEL_OPTIONS, SERVER_OPTIONS


def test_servers_accept_the_clients_keepalive_pings():
    client = dict(CHANNEL_OPTIONS)
    server = dict(SERVER_OPTIONS)
    assert client["grpc.keepalive_permit_without_calls"] == 1
    assert server["grpc.http2.min_recv_ping_interval_without_data_ms"] <= \
        client["grpc.keepalive_time_ms"]
    assert server["grpc.http2.max_ping_strikes"] == 0
