"""The Gradio app's entry: one page to chat (streamed, cited, with the plan), build the knowledge base
and the image library, watch the devices and see which models serve each role.

    polymodal app          # 127.0.0.1:7860, the offline defaults (or: python app.py)

The app lives in `orchestrator.ui`; `import app` starts nothing and imports no gradio.
"""

from orchestrator.ui import build_app, launch, serve, warm_up

__all__ = ["build_app", "launch", "serve", "warm_up"]

if __name__ == "__main__":  # pragma: no cover
    launch()
