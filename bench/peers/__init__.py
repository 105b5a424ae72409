"""Side by side with the peers: one agent workload, traced by pydantic-ai, the OpenAI Agents
SDK, LangGraph and agent-runtime. ``make bench-peers``; see bench/README.md."""
