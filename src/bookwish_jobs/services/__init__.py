"""External services behind small interfaces: email, push (Expo), inventory (Square)."""
