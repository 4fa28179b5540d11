"""Edge devices: what runs on a device (agent, LiteRT models, capabilities, simulated sources) and
the orchestrator's side of MQTT (registry, client), plus a private mosquitto for tests and demos.

Device code imports only numpy, pillow, ai_edge_litert and paho-mqtt. Importing `edge` imports
nothing: pick the module you need (`edge.agent`, `edge.client`, `edge.fleet`, `edge.broker`).
"""

__all__: list[str] = []
