"""Drive the agent's gateway with the official client packages from PyPI.

Usage: gateway_clients.py ollama|openai BASE_URL TOKEN CHAT_MODEL EMBED_MODEL

Runs a model list, a chat, a streamed chat and an embedding with the real
`ollama` or `openai` package and prints one line per step ("list: ...",
"chat: ...", "stream: N pieces: ...", "embed: DIM"), or "STEP failed: ..."
for a step that raised. tests/e2e/gateway.rs runs it and checks the lines.
"""

import sys


def run_ollama(base, token, model, embed_model):
    import ollama

    client = ollama.Client(host=base, headers={"Authorization": f"Bearer {token}"})
    step(
        "list",
        lambda: ",".join(sorted(m.model for m in client.list().models)),
    )
    step(
        "chat",
        lambda: client.chat(
            model=model, messages=[{"role": "user", "content": "hello"}]
        ).message.content,
    )

    def streamed():
        pieces = list(
            client.chat(
                model=model,
                messages=[{"role": "user", "content": "hello"}],
                stream=True,
            )
        )
        text = "".join(p.message.content for p in pieces)
        last = pieces[-1]
        return f"{len(pieces)} pieces, done={last.done}, eval_count={last.eval_count}: {text}"

    step("stream", streamed)
    step(
        "embed",
        lambda: str(len(client.embed(model=embed_model, input="hello").embeddings[0])),
    )


def run_openai(base, token, model, embed_model):
    import openai

    client = openai.OpenAI(base_url=f"{base}/v1", api_key=token, max_retries=0)
    step("list", lambda: ",".join(sorted(m.id for m in client.models.list())))
    step(
        "chat",
        lambda: client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hello"}]
        )
        .choices[0]
        .message.content,
    )

    def streamed():
        chunks = list(
            client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": "hello"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = "".join(
            c.choices[0].delta.content or "" for c in chunks if c.choices
        )
        usage = chunks[-1].usage
        return f"{len(chunks)} pieces, done=True, eval_count={usage.completion_tokens}: {text}"

    step("stream", streamed)
    # The package asks for base64 unless told otherwise, and decodes it.
    step(
        "embed",
        lambda: str(len(client.embeddings.create(model=embed_model, input="hello").data[0].embedding)),
    )


def step(name, action):
    try:
        print(f"{name}: {action()}", flush=True)
    except Exception as err:  # noqa: BLE001 - every failure is reported, not raised
        print(f"{name} failed: {type(err).__name__}: {err}", flush=True)


def main():
    package, base, token, model, embed_model = sys.argv[1:6]
    if package == "ollama":
        run_ollama(base, token, model, embed_model)
    else:
        run_openai(base, token, model, embed_model)


if __name__ == "__main__":
    main()
