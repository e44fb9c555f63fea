"""Example simgate plugins of this repository; copy one to start your own."""
