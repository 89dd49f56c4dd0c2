"""Test kit shipped with the package: tiny fixtures built in code and a fake OpenAI-compatible server.

- :mod:`perturb_core.testing.fake_openai`: :class:`FakeOpenAI` on 127.0.0.1 and its responders.
- :mod:`perturb_core.testing.rxdr`: a writer of R's XDR format for ``.rda`` fixtures.
- :mod:`perturb_core.testing.pytest_plugin`: pytest fixtures (``fake_openai_server``,
  ``fake_llm_settings``, ``real_data``, an autouse isolated LLM cache).

Nothing here is imported by ``import perturb_core``; the plugin needs pytest.
"""
