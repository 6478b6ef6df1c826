"""The Dramatiq side of bcwebhooks: broker set-up and actors that process persisted callbacks."""
