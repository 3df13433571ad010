"""Bookings (预约): availability of experts and mediators, the free slots it leaves, and a
party's private consultations booked in them (docs/BOOKINGS.md)."""
