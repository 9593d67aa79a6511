"""Publishers of analytics results: MQTT (mqtt.py, its queue and payloads) and the files that keep
state across restarts (statefile.py). Each is a consumer of FrameResults (app.worker).
"""
