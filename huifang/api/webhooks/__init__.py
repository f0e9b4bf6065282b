"""Webhooks other systems call: Twilio (voice turns, call status, recordings, SMS) and a
generic HTTP SMS gateway (replies, delivery reports)."""
