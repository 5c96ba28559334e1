"""Entry point (also on a Hugging Face Space): ``python app.py`` serves the app.

With no arguments it uses the embedded defaults: the bundled model, the
built-in reference gallery and a local annotation store under
``$CVRKD_DATA_DIR`` (default ``./data``). ``GRADIO_SERVER_NAME`` and
``GRADIO_SERVER_PORT`` choose the address. The app itself is built in
``space.app.create_app``.
"""
from space.app import main

if __name__ == "__main__":
    main()
