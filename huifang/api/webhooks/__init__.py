"""Webhooks other systems call: Twilio (voice turns, call status, recordings, SMS)."""
