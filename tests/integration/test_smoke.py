def test_a_registered_user_reads_a_message_sent_to_them(api):
    alice, bob = api.register("alice"), api.register("bob")
    sent = api.send(alice, bob, "hi")
    assert sent.status == 201
    r = api.read(bob)
    assert r.status == 200
    assert [m["text"] for m in r.body["messages"]] == ["hi"]
    assert r.body["messages"][0]["message_id"] == sent.body["message_id"]
