"""KINESIS policy node (controller and goals) and text-to-motion node; the ROS-free parts are in tracking.py."""
